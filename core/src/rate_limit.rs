//! Rate limiter: a generic cell rate algorithm (GCRA) bucket in a single atomic.
//!
//! The bucket's whole state is its theoretical arrival time; admitting a call is one compare-and-swap.
//! A refusal says exactly when the next call would be admitted. With `wait`, a call that would be
//! admitted within the wait reserves its slot at once and sleeps until then, so waiting callers are
//! served in order and never over-admitted.
//!
//! A limiter with [`Scope::Global`] (feature `redis`) keeps the same bucket in Redis instead, shared by
//! every replica of the service; see [`RateConfig::scope`].

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use crate::clock::{Clock, duration_nanos};
use crate::kind::{Family, REJECTIONS, Report};
use crate::redact;
use crate::rejected::Rejected;

#[cfg(feature = "redis")]
mod redis;
mod settings;

pub use self::settings::RateSettings;

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
}

impl fmt::Debug for RateConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Taken apart, so that a new field is a compile error here rather than missing from the output.
        let RateConfig { calls, period, burst, wait, scope, redis_url, on_unavailable, redis_timeout, replicas } = self;
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

    fn decide(&self, may_wait: u64, now: u64) -> Decision {
        let (interval, tolerance) = (self.interval.load(Ordering::Relaxed), self.tolerance.load(Ordering::Relaxed));
        let mut arrival = self.arrival.load(Ordering::Acquire);
        loop {
            let start = arrival.max(now);
            let ahead = start - now;
            let decision = Decision::for_delay(ahead.saturating_sub(tolerance), may_wait);
            if let Decision::Refuse { .. } = decision {
                self.refused.fetch_add(1, Ordering::Relaxed);
                return decision;
            }
            match self.arrival.compare_exchange_weak(arrival, start + interval, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return decision,
                Err(actual) => arrival = actual,
            }
        }
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
        match self.decide(0, now) {
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
        let may_wait = self.wait.load(Ordering::Relaxed);
        #[cfg(feature = "redis")]
        let decision = match &self.shared {
            Some(shared) => shared.decide(self, may_wait, now).await,
            None => self.decide(may_wait, now),
        };
        #[cfg(not(feature = "redis"))]
        let decision = self.decide(may_wait, now);
        match decision {
            Decision::Admit => Ok(()),
            Decision::AdmitAfter(delay) => {
                tokio::time::sleep(Duration::from_nanos(delay)).await;
                Ok(())
            }
            Decision::Refuse { retry_after } => Err(self.refusal(retry_after)),
        }
    }

    /// What a refusal with `retry_after` nanoseconds to wait reports.
    #[cold]
    pub(crate) fn refusal(&self, retry_after: u64) -> Rejected {
        Rejected::RateLimited { name: self.name, retry_after: Duration::from_nanos(retry_after) }
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

    const FAMILIES: &'static [&'static Family] = &[&TOKENS_FAMILY, &BACKEND_ERRORS_FAMILY];

    fn report(&self, report: &mut Report) {
        let name = self.name;
        report.push(&TOKENS_FAMILY, [name], f64::from(self.available()));
        report.push(&REJECTIONS, ["rate_limiter", name], self.refused() as f64);
        if self.backend_available().is_some() {
            report.push(&BACKEND_ERRORS_FAMILY, [name], self.backend_errors() as f64);
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
