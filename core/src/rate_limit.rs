//! Rate limiter: a generic cell rate algorithm (GCRA) bucket in a single atomic.
//!
//! The bucket's whole state is its theoretical arrival time; admitting a call is one compare-and-swap.
//! A refusal says exactly when the next call would be admitted. With `wait`, a call that would be
//! admitted within the wait reserves its slot at once and sleeps until then, so waiting callers are
//! served in order and never over-admitted.
//!
//! A limiter with [`Scope::Global`] (feature `redis`) keeps the same bucket in Redis instead, shared by
//! every replica of the service; see [`RateConfig::scope`].
//!
//! A call may also take more than one token ([`Demand::tokens`]: a weighted limit, such as a budget of
//! LLM tokens) and take them from the bucket of its key ([`Demand::keyed`]: one bucket per tenant, at most
//! [`RateConfig::max_keys`] of them); what it really used is settled afterwards with
//! [`RateLimiter::settle`].

use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use crate::clock::{Clock, duration_nanos};
use crate::kind::{Family, REJECTIONS, Report};
use crate::redact;
use crate::rejected::Rejected;

mod demand;
mod keyed;
#[cfg(feature = "redis")]
mod redis;
mod refused_keys;
mod settings;

pub use self::demand::{Demand, LimitKey, Ticket, Tokens};
pub use self::refused_keys::RefusedKey;
pub use self::settings::RateSettings;

use self::demand::{CallKey, Taken};
use self::keyed::KeyedBuckets;
use self::refused_keys::RefusedKeys;

/// Where a limiter's bucket lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// In this process: every replica admits the whole rate.
    #[default]
    Local,
    /// In Redis, one bucket shared by every replica of the service (feature `redis`).
    Global,
}

impl Scope {
    /// The spelling of configuration and of the macro: `local` or `global`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Local => "local",
            Scope::Global => "global",
        }
    }
}

/// What a global limiter does with a call when Redis does not answer within `redis_timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnUnavailable {
    /// Decide in this process, with this replica's share of the quota ([`RateConfig::replica_share`]).
    #[default]
    Local,
    /// Refuse the call, with the time until Redis is asked again as its `retry_after`.
    Reject,
}

impl OnUnavailable {
    /// The spelling of configuration: `local` or `reject`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            OnUnavailable::Local => "local",
            OnUnavailable::Reject => "reject",
        }
    }
}

/// How long a global limiter waits for Redis by default before its `on_unavailable` policy decides.
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(50);

/// How many keys' buckets a keyed limiter holds by default.
pub const DEFAULT_MAX_KEYS: u32 = 10_000;

/// Settings of one rate limiter. Its `Debug` masks the secrets of `redis_url` as
/// [`redact::urls`] does.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct RateConfig {
    /// Calls admitted per `period`.
    pub calls: u32,
    /// The period `calls` are spread over.
    pub period: Duration,
    /// Calls that may be admitted at once after a quiet spell (the bucket's capacity).
    pub burst: u32,
    /// How long a call may wait for a token; `None` refuses at once.
    pub wait: Option<Duration>,
    /// Where the bucket lives. Fixed when the limiter is made: a change takes effect at the next start.
    pub scope: Scope,
    /// The Redis server of a global limiter, such as `redis://redis:6379/0`; `None` reads the `REDIS_URL`
    /// environment variable. Fixed when the limiter is made.
    pub redis_url: Option<String>,
    /// What a global limiter does while Redis is slow or down.
    pub on_unavailable: OnUnavailable,
    /// How long a global limiter's decision waits for Redis before `on_unavailable` decides instead.
    pub redis_timeout: Duration,
    /// How many replicas share a global limiter's quota: each one's share, used while Redis is
    /// unavailable, is `1 / replicas` of the rate and of the burst.
    pub replicas: u32,
    /// How many keys' buckets a keyed limiter holds at most: past it, a bucket that is full again is
    /// dropped first, else the one used least recently.
    pub max_keys: u32,
}

impl fmt::Debug for RateConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Taken apart, so that a new field is a compile error here rather than missing from the output.
        let RateConfig {
            calls,
            period,
            burst,
            wait,
            scope,
            redis_url,
            on_unavailable,
            redis_timeout,
            replicas,
            max_keys,
        } = self;
        f.debug_struct("RateConfig")
            .field("calls", calls)
            .field("period", period)
            .field("burst", burst)
            .field("wait", wait)
            .field("scope", scope)
            .field("redis_url", &redis_url.as_deref().map(redact::urls))
            .field("on_unavailable", on_unavailable)
            .field("redis_timeout", redis_timeout)
            .field("replicas", replicas)
            .field("max_keys", max_keys)
            .finish()
    }
}

impl RateConfig {
    /// `calls` per second, with a burst of the same size, local.
    #[must_use]
    pub fn per_second(calls: u32) -> RateConfig {
        RateConfig {
            calls,
            period: Duration::from_secs(1),
            burst: calls.max(1),
            wait: None,
            scope: Scope::Local,
            redis_url: None,
            on_unavailable: OnUnavailable::Local,
            redis_timeout: DEFAULT_REDIS_TIMEOUT,
            replicas: 1,
            max_keys: DEFAULT_MAX_KEYS,
        }
    }

    /// One replica's share of a quota that `replicas` replicas share, as a local limiter: the same
    /// calls over `replicas` times the period (so 50 per second over 10 replicas is 50 per 10 seconds,
    /// 5 per second, without rounding), and the burst divided by `replicas`, at least 1.
    #[must_use]
    pub fn replica_share(&self) -> RateConfig {
        let replicas = self.replicas.max(1);
        RateConfig {
            period: self.period.saturating_mul(replicas),
            burst: (self.burst / replicas).max(1),
            scope: Scope::Local,
            ..self.clone()
        }
    }

    /// The interval between two calls at the sustained rate, in nanoseconds (at least 1).
    fn interval_nanos(&self) -> u64 {
        (duration_nanos(self.period) / u64::from(self.calls.max(1))).max(1)
    }
}

impl Default for RateConfig {
    fn default() -> Self {
        RateConfig::per_second(10)
    }
}

/// A rate limiter; shared by name between every function that names it.
pub struct RateLimiter {
    name: &'static str,
    calls: AtomicU32,
    period: AtomicU64,
    burst: AtomicU32,
    /// Nanoseconds; 0 refuses at once.
    wait: AtomicU64,
    interval: AtomicU64,
    /// How far ahead of now the theoretical arrival time may run: `(burst - 1) * interval`.
    tolerance: AtomicU64,
    clock: Clock,
    /// Theoretical arrival time of the next call, in the clock's nanoseconds.
    arrival: AtomicU64,
    refused: AtomicU64,
    /// The buckets of the keys of keyed calls, made by the first one: an unkeyed limiter has none.
    keyed: OnceLock<KeyedBuckets>,
    max_keys: AtomicU32,
    /// The keys refused most, counted only when a keyed call is refused.
    refused_keys: RefusedKeys,
    /// The bucket in Redis of a global limiter, chosen when the limiter is made; a local limiter's hot
    /// path tests it once, and never without the `redis` feature.
    #[cfg(feature = "redis")]
    shared: Option<Box<redis::SharedBucket>>,
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter").field("name", &self.name).field("config", &self.config()).finish_non_exhaustive()
    }
}

/// What one decision of the bucket was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Admit,
    /// Admitted, with a slot reserved this far in the future.
    AdmitAfter(u64),
    Refuse {
        retry_after: u64,
    },
}

impl Decision {
    /// The decision for a call whose slot is `delay` nanoseconds away and that may wait `may_wait`:
    /// the rule of every bucket, local or in Redis (whose script applies it to its own clock).
    fn for_delay(delay: u64, may_wait: u64) -> Decision {
        match delay {
            0 => Decision::Admit,
            delay if delay <= may_wait => Decision::AdmitAfter(delay),
            retry_after => Decision::Refuse { retry_after },
        }
    }
}

impl RateLimiter {
    /// A limiter with its own clock; named limiters used by `#[hardened]` are made by the registry.
    ///
    /// A [`Scope::Global`] limiter registers a check called `rate_limiter.<name>` with the process-wide
    /// health registry (`hardened::health::registry`), degraded while Redis does not answer.
    ///
    /// # Panics
    ///
    /// With [`Scope::Global`] in a build without the `redis` feature (configuration and the macro refuse
    /// it before it gets here).
    #[must_use]
    #[allow(clippy::needless_pass_by_value, reason = "constructors take their settings by value, like builders")]
    pub fn new(name: &'static str, config: RateConfig, clock: Clock) -> RateLimiter {
        #[cfg(not(feature = "redis"))]
        assert!(
            config.scope == Scope::Local,
            "rate limiter `{name}` has scope = \"global\", which needs the `redis` feature of hardened"
        );
        let limiter = RateLimiter {
            name,
            calls: AtomicU32::new(0),
            period: AtomicU64::new(0),
            burst: AtomicU32::new(1),
            wait: AtomicU64::new(0),
            interval: AtomicU64::new(1),
            tolerance: AtomicU64::new(0),
            // The origin of the clock: the bucket starts full, whatever time the first caller read.
            arrival: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            keyed: OnceLock::new(),
            max_keys: AtomicU32::new(config.max_keys),
            refused_keys: RefusedKeys::default(),
            #[cfg(feature = "redis")]
            shared: (config.scope == Scope::Global)
                .then(|| Box::new(redis::SharedBucket::new(name, &config, clock.clone()))),
            clock,
        };
        limiter.retune(&config);
        limiter
    }

    /// Applies new settings to the running limiter; the bucket keeps its level. Returns `false` when
    /// the settings change the scope or the Redis URL, which take effect at the next start (the others
    /// apply now).
    pub fn retune(&self, config: &RateConfig) -> bool {
        let interval = config.interval_nanos();
        self.calls.store(config.calls, Ordering::Relaxed);
        self.period.store(duration_nanos(config.period), Ordering::Relaxed);
        self.burst.store(config.burst.max(1), Ordering::Relaxed);
        self.wait.store(config.wait.map_or(0, duration_nanos), Ordering::Relaxed);
        self.interval.store(interval, Ordering::Relaxed);
        self.tolerance.store(interval.saturating_mul(u64::from(config.burst.max(1) - 1)), Ordering::Relaxed);
        self.max_keys.store(config.max_keys.max(1), Ordering::Relaxed);
        if let Some(keyed) = self.keyed.get() {
            keyed.resize(config.max_keys);
        }
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            return shared.retune(config);
        }
        config.scope == Scope::Local
    }

    /// The limiter's name.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The settings in force.
    #[must_use]
    pub fn config(&self) -> RateConfig {
        let wait = self.wait.load(Ordering::Relaxed);
        #[cfg_attr(not(feature = "redis"), allow(unused_mut, reason = "only a global limiter adds to it"))]
        let mut config = RateConfig {
            calls: self.calls.load(Ordering::Relaxed),
            period: Duration::from_nanos(self.period.load(Ordering::Relaxed)),
            burst: self.burst.load(Ordering::Relaxed),
            wait: (wait > 0).then(|| Duration::from_nanos(wait)),
            max_keys: self.max_keys.load(Ordering::Relaxed),
            ..RateConfig::default()
        };
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            shared.describe(&mut config);
        }
        config
    }

    /// Where the bucket lives.
    #[must_use]
    pub fn scope(&self) -> Scope {
        #[cfg(feature = "redis")]
        if self.shared.is_some() {
            return Scope::Global;
        }
        Scope::Local
    }

    /// Whether a global limiter's last question to Redis was answered: `Some(false)` while its
    /// `on_unavailable` policy decides; `None` for a local limiter.
    #[must_use]
    pub fn backend_available(&self) -> Option<bool> {
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            return Some(shared.backend().available());
        }
        None
    }

    /// How a global limiter's Redis is doing, for its health check; `None` for a local limiter.
    #[cfg(feature = "redis")]
    #[doc(hidden)]
    pub fn backend_health(&self) -> Option<redis::BackendHealth> {
        self.shared.as_ref().map(|shared| shared.backend().health())
    }

    /// How many of a global limiter's questions to Redis failed or timed out (0 for a local limiter):
    /// `hardened_rate_limiter_backend_errors_total`.
    #[must_use]
    pub fn backend_errors(&self) -> u64 {
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            return shared.backend().errors();
        }
        0
    }

    /// Tokens available now, from 0 to `burst`; for a global limiter, the shared bucket's tokens as
    /// Redis last reported them.
    #[must_use]
    pub fn available(&self) -> u32 {
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            return shared.available();
        }
        let now = self.clock.now_nanos();
        let (interval, tolerance) = (self.interval.load(Ordering::Relaxed), self.tolerance.load(Ordering::Relaxed));
        let arrival = self.arrival.load(Ordering::Acquire).max(now);
        let headroom = (now + tolerance + interval).saturating_sub(arrival);
        u32::try_from(headroom / interval).unwrap_or(u32::MAX).min(self.burst.load(Ordering::Relaxed))
    }

    /// Calls refused so far (for a global limiter, by Redis, by its policy and by its replica share).
    #[must_use]
    pub fn refused(&self) -> u64 {
        let refused = self.refused.load(Ordering::Relaxed);
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            return refused + shared.replica_share().refused();
        }
        refused
    }

    /// The interval between tokens and how far the TAT may run ahead of now, in force now.
    fn spacing(&self) -> (u64, u64) {
        (self.interval.load(Ordering::Relaxed), self.tolerance.load(Ordering::Relaxed))
    }

    /// Decides a call of `cost` tokens on the single bucket at `now`, counting a refusal.
    fn decide(&self, cost: u64, may_wait: u64, now: u64) -> Decision {
        let (interval, tolerance) = self.spacing();
        let mut arrival = self.arrival.load(Ordering::Acquire);
        loop {
            let (decision, next) = gcra(arrival, now, cost, interval, tolerance, may_wait);
            let Some(next) = next else {
                if let Decision::Refuse { .. } = decision {
                    self.refused.fetch_add(1, Ordering::Relaxed);
                }
                return decision;
            };
            match self.arrival.compare_exchange_weak(arrival, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return decision,
                Err(actual) => arrival = actual,
            }
        }
    }

    /// Decides `demand` on this limiter's own buckets (its single one, or its key's) at `now`, counting a
    /// refusal.
    fn decide_here(&self, demand: Demand<'_>, may_wait: u64, now: u64) -> Decision {
        let Some(key) = demand.key else { return self.decide(demand.cost, may_wait, now) };
        let (interval, tolerance) = self.spacing();
        let decision = self
            .buckets()
            .update(key.hash, now, |arrival| gcra(arrival, now, demand.cost, interval, tolerance, may_wait));
        if let Decision::Refuse { .. } = decision {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        decision
    }

    /// The buckets of keyed calls, made by the first.
    fn buckets(&self) -> &KeyedBuckets {
        self.keyed.get_or_init(|| KeyedBuckets::new(self.max_keys.load(Ordering::Relaxed)))
    }

    /// Refunds (`used` below the ticket's cost) or charges (above it) the difference on this limiter's own
    /// bucket the ticket's tokens came from: the single one, or the key's of `hash`.
    fn settle_here(&self, hash: Option<u64>, cost: u64, used: u64, now: u64) {
        if used == cost {
            return;
        }
        let interval = self.spacing().0;
        let adjusted = |arrival: u64| {
            if used > cost {
                // A charge takes tokens as a call would: from the bucket's level now.
                arrival.max(now).saturating_add((used - cost).saturating_mul(interval))
            } else {
                // A refund beyond a full bucket is lost, as tokens over the burst are.
                arrival.saturating_sub((cost - used).saturating_mul(interval))
            }
        };
        match hash {
            None => {
                let _ =
                    self.arrival.fetch_update(Ordering::AcqRel, Ordering::Acquire, |arrival| Some(adjusted(arrival)));
            }
            Some(hash) => self.buckets().update(hash, now, |arrival| ((), Some(adjusted(arrival)))),
        }
    }

    /// Takes `demand`'s tokens now, or refuses with the time until they are there (or, for a cost over the
    /// burst, at once). It never waits, and a global limiter does not ask Redis: it decides with this
    /// replica's share of the quota, as when Redis is down.
    ///
    /// # Errors
    ///
    /// [`Rejected::RateLimited`] when the bucket lacks the tokens, [`Rejected::CostOverBurst`] when it can
    /// never hold them.
    pub fn try_take(&self, demand: Demand<'_>) -> Result<Ticket, Rejected> {
        let now = self.clock.now_nanos();
        self.check_cost(demand, now)?;
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            let key = demand.key.map(|key| key.hash);
            return match shared.replica_share().decide_here(demand, 0, now) {
                Decision::Refuse { retry_after } => Err(self.refused_demand(demand, retry_after, now)),
                _ => Ok(Ticket { cost: demand.cost, bucket: Taken::Share(key) }),
            };
        }
        match self.decide_here(demand, 0, now) {
            Decision::Refuse { retry_after } => Err(self.refused_demand(demand, retry_after, now)),
            _ => Ok(Ticket { cost: demand.cost, bucket: Taken::Here(demand.key.map(|key| key.hash)) }),
        }
    }

    /// Takes `demand`'s tokens, waiting up to the configured `wait` for them; a global limiter asks Redis,
    /// within `redis_timeout`.
    ///
    /// # Errors
    ///
    /// As [`RateLimiter::try_take`], when the tokens are not there within the wait.
    pub async fn take(&self, demand: Demand<'_>) -> Result<Ticket, Rejected> {
        self.take_at(demand, self.clock.now_nanos()).await
    }

    /// [`RateLimiter::take`] at a time the caller read from this limiter's clock.
    async fn take_at(&self, demand: Demand<'_>, now: u64) -> Result<Ticket, Rejected> {
        self.check_cost(demand, now)?;
        let may_wait = self.wait.load(Ordering::Relaxed);
        #[cfg(feature = "redis")]
        let (decision, bucket) = match &self.shared {
            Some(shared) => shared.decide(self, demand, may_wait, now).await,
            None => (self.decide_here(demand, may_wait, now), Taken::Here(demand.key.map(|key| key.hash))),
        };
        #[cfg(not(feature = "redis"))]
        let (decision, bucket) = (self.decide_here(demand, may_wait, now), Taken::Here(demand.key.map(|key| key.hash)));
        match decision {
            Decision::Admit => {}
            Decision::AdmitAfter(delay) => tokio::time::sleep(Duration::from_nanos(delay)).await,
            Decision::Refuse { retry_after } => return Err(self.refused_demand(demand, retry_after, now)),
        }
        Ok(Ticket { cost: demand.cost, bucket })
    }

    /// Settles a ticket of this limiter with the tokens the call really used: the difference is refunded
    /// to its bucket, or charged to it, so that the bucket tracks what was spent (such as the tokens an LLM
    /// provider reports). A ticket from Redis costs one more round trip, and only when `used` differs from
    /// its cost; if Redis does not answer within `redis_timeout`, the difference is lost.
    #[cfg_attr(
        not(feature = "redis"),
        allow(clippy::unused_async, reason = "a ticket from Redis awaits its round trip")
    )]
    pub async fn settle(&self, ticket: Ticket, used: u64) {
        #[cfg(feature = "redis")]
        if let (Taken::Shared(key), Some(shared)) = (&ticket.bucket, &self.shared) {
            if used != ticket.cost {
                shared.settle(self, key, ticket.cost, used).await;
            }
            return;
        }
        self.settle_now(ticket, used);
    }

    /// [`RateLimiter::settle`] without waiting: a ticket from Redis is settled by a task on the current
    /// tokio runtime (outside one, its difference is lost); every other ticket at once.
    #[cfg_attr(
        not(feature = "redis"),
        allow(clippy::needless_pass_by_value, reason = "a ticket from Redis moves its key into the settling task")
    )]
    pub fn settle_now(&self, ticket: Ticket, used: u64) {
        let now = self.clock.now_nanos();
        match ticket.bucket {
            Taken::Here(hash) => self.settle_here(hash, ticket.cost, used, now),
            #[cfg(feature = "redis")]
            Taken::Share(hash) => {
                if let Some(shared) = &self.shared {
                    shared.replica_share().settle_here(hash, ticket.cost, used, now);
                }
            }
            #[cfg(feature = "redis")]
            Taken::Shared(key) => {
                if let (Some(shared), Ok(runtime)) = (&self.shared, tokio::runtime::Handle::try_current())
                    && used != ticket.cost
                {
                    let settlement = shared.settlement(self, key, ticket.cost, used);
                    runtime.spawn(settlement);
                }
            }
        }
    }

    /// Refuses a demand of more tokens than the bucket holds: it could never be admitted.
    fn check_cost(&self, demand: Demand<'_>, now: u64) -> Result<(), Rejected> {
        let burst = self.burst.load(Ordering::Relaxed);
        if demand.cost <= u64::from(burst) {
            return Ok(());
        }
        self.refused.fetch_add(1, Ordering::Relaxed);
        if let Some(key) = demand.key {
            self.refused_keys.count(key.hash, key.shown, now);
        }
        Err(Rejected::CostOverBurst { name: self.name, cost: demand.cost, burst })
    }

    /// The refusal of `demand`, its key counted among those refused.
    #[cold]
    fn refused_demand(&self, demand: Demand<'_>, retry_after: u64, now: u64) -> Rejected {
        if let Some(CallKey { hash, shown }) = demand.key {
            self.refused_keys.count(hash, shown, now);
        }
        self.refusal(retry_after)
    }

    /// The keys this limiter refused most in the last one to two minutes, most first, at most `n`: for an
    /// operator who wants to know which tenant is being held back. Approximate past the 64 keys it counts
    /// (each entry says by how much it may be over).
    #[must_use]
    pub fn top_refused(&self, n: usize) -> Vec<RefusedKey> {
        self.refused_keys.top(n, self.clock.now_nanos())
    }

    /// How many keys' buckets the limiter holds now (`hardened_rate_limiter_keys`); 0 for a limiter no
    /// keyed call has used. A key whose bucket is full again may be dropped, and is then not counted.
    #[must_use]
    pub fn keys(&self) -> usize {
        self.keyed.get().map_or(0, KeyedBuckets::len)
    }

    /// Takes a token now, or refuses with the time until one is available. A global limiter cannot ask
    /// Redis without waiting: it decides with this replica's share of the quota, as when Redis is down.
    #[inline]
    pub fn try_acquire(&self) -> Result<(), Rejected> {
        self.try_acquire_at(self.clock.now_nanos())
    }

    /// [`RateLimiter::try_acquire`] at a time the caller read from this limiter's clock.
    #[inline]
    pub(crate) fn try_acquire_at(&self, now: u64) -> Result<(), Rejected> {
        self.admit_at(now).map_err(|retry_after| self.refusal(retry_after))
    }

    /// Takes a token at `now`, or refuses (counted) with the nanoseconds until one is available, which
    /// [`RateLimiter::refusal`] spells out: the guard chain keeps the refusal small until it is reported.
    #[inline]
    pub(crate) fn admit_at(&self, now: u64) -> Result<(), u64> {
        if self.take_now(now) { Ok(()) } else { self.admit_slow(now) }
    }

    /// Takes a token that is there now, with one compare-and-swap, inline; `false` when there is none or
    /// another caller raced this one, for [`RateLimiter::decide`] to settle, and always for a global
    /// limiter, whose tokens are in Redis.
    #[inline]
    pub(crate) fn take_now(&self, now: u64) -> bool {
        #[cfg(feature = "redis")]
        if self.shared.is_some() {
            return false;
        }
        let (interval, tolerance) = (self.interval.load(Ordering::Relaxed), self.tolerance.load(Ordering::Relaxed));
        let arrival = self.arrival.load(Ordering::Acquire);
        let start = arrival.max(now);
        start - now <= tolerance
            && self
                .arrival
                .compare_exchange_weak(arrival, start + interval, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    #[cold]
    fn admit_slow(&self, now: u64) -> Result<(), u64> {
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            return shared.replica_share().admit_at(now);
        }
        match self.decide(1, 0, now) {
            Decision::Admit | Decision::AdmitAfter(_) => Ok(()),
            Decision::Refuse { retry_after } => Err(retry_after),
        }
    }

    /// Whether a call that found no token at once must go through [`RateLimiter::acquire_at`]: it may
    /// wait for one, or the limiter is global.
    #[inline]
    pub(crate) fn waits(&self) -> bool {
        #[cfg(feature = "redis")]
        if self.shared.is_some() {
            return true;
        }
        self.wait.load(Ordering::Relaxed) > 0
    }

    /// Takes a token, waiting up to the configured `wait` for one (refusing at once without a `wait`).
    pub async fn acquire(&self) -> Result<(), Rejected> {
        self.acquire_at(self.clock.now_nanos()).await
    }

    /// [`RateLimiter::acquire`] at a time the caller read from this limiter's clock.
    pub(crate) async fn acquire_at(&self, now: u64) -> Result<(), Rejected> {
        self.take_at(Demand::ONE, now).await.map(drop)
    }

    /// What a refusal with `retry_after` nanoseconds to wait reports.
    #[cold]
    pub(crate) fn refusal(&self, retry_after: u64) -> Rejected {
        Rejected::RateLimited { name: self.name, retry_after: Duration::from_nanos(retry_after) }
    }
}

/// The GCRA rule for a call of `cost` tokens arriving at `now` at a bucket whose theoretical arrival time
/// is `arrival`: its decision, and the bucket's new TAT when it takes the tokens. A call of no tokens is
/// admitted and changes nothing.
fn gcra(arrival: u64, now: u64, cost: u64, interval: u64, tolerance: u64, may_wait: u64) -> (Decision, Option<u64>) {
    if cost == 0 {
        return (Decision::Admit, None);
    }
    let start = arrival.max(now);
    // The call's last token is the one that must fit: the others are taken ahead of it.
    let last = start.saturating_add(interval.saturating_mul(cost - 1));
    let decision = Decision::for_delay((last - now).saturating_sub(tolerance), may_wait);
    match decision {
        Decision::Refuse { .. } => (decision, None),
        _ => (decision, Some(last.saturating_add(interval))),
    }
}

impl crate::kind::GuardKind for RateLimiter {
    type Config = RateConfig;
    type Settings = RateSettings;

    const SCHEMA: &'static hardened_schema::Kind = &hardened_schema::rate::KIND;

    fn layer(settings: &RateSettings, config: &mut RateConfig) {
        settings.apply_to(config);
    }

    fn build(name: &'static str, config: RateConfig) -> RateLimiter {
        RateLimiter::new(name, config, Clock::system())
    }

    fn reconfigure(&self, config: &RateConfig) {
        if !self.retune(config) {
            tracing::warn!(
                rate_limiter = self.name(),
                "a new rate limiter scope or Redis URL takes effect at the next restart; the other settings apply now"
            );
        }
    }

    fn settings(&self) -> RateSettings {
        RateSettings::of(&self.config())
    }

    const FAMILIES: &'static [&'static Family] = &[&TOKENS_FAMILY, &BACKEND_ERRORS_FAMILY, &KEYS_FAMILY];

    fn report(&self, report: &mut Report) {
        let name = self.name;
        report.push(&TOKENS_FAMILY, [name], f64::from(self.available()));
        report.push(&REJECTIONS, ["rate_limiter", name], self.refused() as f64);
        if self.backend_available().is_some() {
            report.push(&BACKEND_ERRORS_FAMILY, [name], self.backend_errors() as f64);
        }
        if self.keyed.get().is_some() {
            report.push(&KEYS_FAMILY, [name], self.keys() as f64);
        }
    }
}

static TOKENS_FAMILY: Family = Family {
    name: "hardened_rate_limiter_available_tokens",
    help: "Tokens a rate limiter could grant now.",
    counter: false,
    labels: &["name"],
};

static BACKEND_ERRORS_FAMILY: Family = Family {
    name: "hardened_rate_limiter_backend_errors_total",
    help: "Questions of a global rate limiter to Redis that failed or timed out.",
    counter: true,
    labels: &["name"],
};

static KEYS_FAMILY: Family = Family {
    name: "hardened_rate_limiter_keys",
    help: "Buckets a keyed rate limiter holds, one per key it has seen recently (at most max_keys).",
    counter: false,
    labels: &["name"],
};
