//! The bucket of a global rate limiter, kept in Redis and shared by every replica of the service.
//!
//! One key per bucket holds its theoretical arrival time: `hardened:rate:<service>:<name>` for the
//! limiter's single bucket, and `hardened:rate:<service>:<name>:{<fingerprint>}` for the bucket of a key,
//! where the fingerprint is the first 128 bits of the SHA-256 of the key's `Debug` (the same in every
//! replica, and no key's text in Redis). The braces are a Redis Cluster hash tag: each bucket stays on
//! one shard, and different keys' buckets spread over the shards. A Lua script applies the local
//! limiter's GCRA arithmetic to a bucket on the server, for a call of any number of tokens, atomically and
//! in one round trip, reading the server's own clock (`TIME`) so that the replicas' clocks do not matter.
//! A key expires when its bucket would be full again, so an idle limiter or tenant leaves nothing behind.
//!
//! A decision waits at most `redis_timeout` for Redis. When Redis fails or does not answer in time, the
//! limiter stops asking it for a while (from 50 ms, doubling to 2 s, then one probing call at a time)
//! and its `on_unavailable` policy decides: this replica's share of the quota, or a refusal.
//!
//! The connection is redis' `ConnectionManager`: one multiplexed connection per limiter, which pipelines
//! every concurrent decision over one socket and reconnects by itself. A pool would add a checkout to each
//! decision and buys nothing for a single script call that never blocks the connection.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::demand::Taken;
use super::{Decision, Demand, OnUnavailable, RateConfig, RateLimiter, Scope};
use crate::clock::{Clock, duration_nanos};

/// One decision of the shared bucket: the arithmetic of [`RateLimiter::decide`], in microseconds of the
/// server's clock (exact in Lua's doubles until the year 2255).
const GCRA_SCRIPT: &str = r"
-- KEYS[1]: the bucket, holding its theoretical arrival time (TAT); absent when the bucket is full.
-- ARGV[1]: the interval between calls at the sustained rate; ARGV[2]: how far the TAT may run ahead of
-- now, (burst - 1) intervals; ARGV[3]: how long this call may wait for its slot; ARGV[4]: the tokens it
-- takes (at least 1).
-- Returns {admitted (1 or 0), delay until the call's slot (or retry_after), tokens left}.
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local may_wait = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local start = math.max(tonumber(redis.call('GET', KEYS[1])) or now, now)
-- The call's last token is the one that must fit: the others are taken ahead of it.
local last = start + (cost - 1) * interval
local delay = math.max(last - now - tolerance, 0)
if delay > may_wait then
  return {0, delay, 0}
end
local arrival = last + interval
-- Expire the key when the bucket is full again: the moment now reaches the new TAT.
redis.call('SET', KEYS[1], string.format('%.0f', arrival), 'PX', math.ceil((arrival - now) / 1000))
return {1, delay, math.max(math.floor((now + tolerance + interval - arrival) / interval), 0)}
";

static SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(GCRA_SCRIPT));

/// The settlement of a call's tokens: the bucket's TAT moved by the difference between what the call used
/// and what it took.
const SETTLE_SCRIPT: &str = r"
-- KEYS[1]: the bucket. ARGV[1]: microseconds to move its TAT, later for a charge, earlier for a refund.
local change = tonumber(ARGV[1])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
local arrival
if change > 0 then
  -- A charge takes tokens as a call would: from the bucket's level now.
  arrival = math.max(tat, now) + change
else
  arrival = tat + change
end
if arrival <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], string.format('%.0f', arrival), 'PX', math.ceil((arrival - now) / 1000))
end
return 1
";

static SETTLE: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(SETTLE_SCRIPT));

/// How long background connection attempts may take; each decision is bounded by `redis_timeout` anyway.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// The pause after the first failure; it doubles with each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// The longest pause between two attempts to reach Redis while it is down.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The shared bucket of one global limiter, and this replica's share for when Redis is unavailable.
pub(super) struct SharedBucket {
    name: &'static str,
    key: String,
    /// As configured, to tell a reload that changes it.
    redis_url: Option<String>,
    client: Result<redis::Client, String>,
    /// Made on the first decision, inside the runtime that will drive it.
    connection: OnceLock<ConnectionManager>,
    share: RateLimiter,
    /// Nanoseconds.
    timeout: AtomicU64,
    replicas: AtomicU32,
    /// The shared bucket's tokens after the last decision Redis made.
    tokens: AtomicU32,
    backend: Backend,
    clock: Clock,
}

impl SharedBucket {
    /// The bucket of the limiter `name` (in this service's namespace).
    pub(super) fn new(name: &'static str, config: &RateConfig, clock: Clock) -> SharedBucket {
        let backend = Backend::default();
        let redis_url = config.redis_url.clone();
        let client = redis_url
            .clone()
            .or_else(|| std::env::var("REDIS_URL").ok().filter(|url| !url.is_empty()))
            .ok_or_else(|| "no Redis server: set `redis_url` or the REDIS_URL environment variable".to_owned())
            .and_then(|url| {
                redis::Client::open(url)
                    .map_err(|error| format!("not a Redis URL: {}", crate::redact::urls(&error.to_string())))
            });
        if let Err(error) = &client {
            backend.failed(name, error.clone(), clock.now_nanos());
        }
        let bucket = SharedBucket {
            name,
            key: format!("hardened:rate:{}:{name}", crate::support::service_name()),
            redis_url,
            client,
            connection: OnceLock::new(),
            share: RateLimiter::new(name, config.replica_share(), clock.clone()),
            timeout: AtomicU64::new(0),
            replicas: AtomicU32::new(1),
            tokens: AtomicU32::new(config.burst),
            backend,
            clock,
        };
        bucket.retune(config);
        bucket
    }

    /// Applies the settings that can change while running; `false` when the scope or the URL changes.
    pub(super) fn retune(&self, config: &RateConfig) -> bool {
        self.share.retune(&config.replica_share());
        self.timeout.store(duration_nanos(config.redis_timeout), Ordering::Relaxed);
        self.replicas.store(config.replicas.max(1), Ordering::Relaxed);
        self.backend.reject.store(config.on_unavailable == OnUnavailable::Reject, Ordering::Relaxed);
        config.scope == Scope::Global && config.redis_url == self.redis_url
    }

    /// Sets this bucket's own settings in `config`, which holds the rate, burst and wait in force.
    pub(super) fn describe(&self, config: &mut RateConfig) {
        config.scope = Scope::Global;
        config.redis_url.clone_from(&self.redis_url);
        config.on_unavailable =
            if self.backend.reject.load(Ordering::Relaxed) { OnUnavailable::Reject } else { OnUnavailable::Local };
        config.redis_timeout = Duration::from_nanos(self.timeout.load(Ordering::Relaxed));
        config.replicas = self.replicas.load(Ordering::Relaxed);
    }

    /// The local limiter with this replica's share of the quota.
    pub(super) fn replica_share(&self) -> &RateLimiter {
        &self.share
    }

    pub(super) fn available(&self) -> u32 {
        self.tokens.load(Ordering::Relaxed)
    }

    pub(super) fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Decides `demand`, a call of `limiter` that may wait `may_wait` nanoseconds and arrived at `now`: in
    /// Redis when it answers within the timeout, else by the `on_unavailable` policy. Returns the decision
    /// and the bucket that made it.
    pub(super) async fn decide(
        &self,
        limiter: &RateLimiter,
        demand: Demand<'_>,
        may_wait: u64,
        now: u64,
    ) -> (Decision, Taken) {
        let timeout = Duration::from_nanos(self.timeout.load(Ordering::Relaxed));
        if self.backend.may_ask(self.clock.now_nanos(), timeout) {
            let key = self.bucket_key(demand);
            match tokio::time::timeout(timeout, self.ask(limiter, &key, demand.cost, may_wait)).await {
                Ok(Ok((decision, tokens))) => {
                    self.backend.answered(self.name);
                    // The limiter's level is its single bucket's; a key's bucket says nothing of it.
                    if demand.key.is_none() {
                        self.tokens.store(tokens, Ordering::Relaxed);
                    }
                    if let Decision::Refuse { .. } = decision {
                        limiter.refused.fetch_add(1, Ordering::Relaxed);
                    }
                    return (decision, Taken::Shared(key));
                }
                Ok(Err(error)) => self.backend.failed(self.name, error, self.clock.now_nanos()),
                Err(_) => self.backend.failed(
                    self.name,
                    format!("no answer within {}", humantime::format_duration(timeout)),
                    self.clock.now_nanos(),
                ),
            }
        }
        let key = demand.key.map(|key| key.hash);
        if self.backend.reject.load(Ordering::Relaxed) {
            limiter.refused.fetch_add(1, Ordering::Relaxed);
            let until_next_attempt = self.backend.retry_at().saturating_sub(self.clock.now_nanos());
            let refusal = Decision::Refuse { retry_after: until_next_attempt.max(duration_nanos(timeout)) };
            return (refusal, Taken::Share(key));
        }
        (self.share.decide_here(demand, may_wait, now), Taken::Share(key))
    }

    /// The Redis key of `demand`'s bucket: the limiter's, or its key's.
    fn bucket_key(&self, demand: Demand<'_>) -> String {
        use sha2::Digest as _;
        use std::fmt::Write as _;

        let Some(key) = demand.key else { return self.key.clone() };
        let digest = sha2::Sha256::digest(format!("{:?}", key.shown).as_bytes());
        let mut bucket = format!("{}:{{", self.key);
        for byte in &digest[..16] {
            let _ = write!(bucket, "{byte:02x}");
        }
        bucket.push('}');
        bucket
    }

    /// The connection to Redis, made by the first question.
    fn connection(&self) -> Result<ConnectionManager, String> {
        let client = self.client.as_ref().map_err(Clone::clone)?;
        if let Some(connection) = self.connection.get() {
            return Ok(connection.clone());
        }
        let config = ConnectionManagerConfig::new().set_connection_timeout(Some(CONNECT_TIMEOUT));
        let made =
            ConnectionManager::new_lazy_with_config(client.clone(), config).map_err(|error| error.to_string())?;
        Ok(self.connection.get_or_init(|| made).clone())
    }

    /// The limiter's interval in whole microseconds, rounded up so the shared bucket never admits more
    /// than the rate.
    fn interval_micros(limiter: &RateLimiter) -> u64 {
        limiter.interval.load(Ordering::Relaxed).div_ceil(1000)
    }

    /// One round trip: the script's decision on the bucket `key` for a call of `cost` tokens, and the
    /// tokens it leaves.
    async fn ask(&self, limiter: &RateLimiter, key: &str, cost: u64, may_wait: u64) -> Result<(Decision, u32), String> {
        let mut connection = self.connection()?;
        let interval = Self::interval_micros(limiter);
        let tolerance = interval.saturating_mul(u64::from(limiter.burst.load(Ordering::Relaxed).max(1) - 1));
        let mut invocation = SCRIPT.key(key);
        invocation.arg(interval).arg(tolerance).arg(may_wait / 1000).arg(cost.max(1));
        let (admitted, delay, tokens): (u8, u64, u32) =
            SyncFuture::new(invocation.invoke_async(&mut connection)).await.map_err(|error| error.to_string())?;
        let delay = delay.saturating_mul(1000);
        let decision =
            if admitted == 1 { Decision::for_delay(delay, u64::MAX) } else { Decision::Refuse { retry_after: delay } };
        Ok((decision, tokens))
    }

    /// Settles a ticket of `cost` tokens that used `used`, on the bucket `key`, within `redis_timeout`;
    /// a failure is counted and logged like a decision's, and the difference is lost.
    pub(super) async fn settle(&self, limiter: &RateLimiter, key: &str, cost: u64, used: u64) {
        let timeout = Duration::from_nanos(self.timeout.load(Ordering::Relaxed));
        let outcome = match self.connection() {
            Ok(connection) => {
                tokio::time::timeout(timeout, settle_bucket(connection, key.to_owned(), change(limiter, cost, used)))
                    .await
                    .unwrap_or_else(|_| Err(format!("no answer within {}", humantime::format_duration(timeout))))
            }
            Err(error) => Err(error),
        };
        match outcome {
            Ok(()) => self.backend.answered(self.name),
            Err(error) => self.backend.failed(self.name, error, self.clock.now_nanos()),
        }
    }

    /// [`SharedBucket::settle`] as a task of its own, owning what it needs; a failure is logged.
    pub(super) fn settlement(
        &self,
        limiter: &RateLimiter,
        key: String,
        cost: u64,
        used: u64,
    ) -> impl Future<Output = ()> + Send + 'static {
        let (name, timeout) = (self.name, Duration::from_nanos(self.timeout.load(Ordering::Relaxed)));
        let (connection, change) = (self.connection(), change(limiter, cost, used));
        async move {
            let outcome = match connection {
                Ok(connection) => tokio::time::timeout(timeout, settle_bucket(connection, key, change))
                    .await
                    .unwrap_or_else(|_| Err("no answer in time".to_owned())),
                Err(error) => Err(error),
            };
            if let Err(error) = outcome {
                tracing::warn!(
                    target: "hardened::rate_limit",
                    limiter = name,
                    error = %crate::redact::urls(&error),
                    "a global rate limiter could not settle a call's tokens in Redis; the difference is lost"
                );
            }
        }
    }
}

/// How far a settlement moves a bucket's TAT, in microseconds: the tokens used over those taken (negative
/// for a refund), at the limiter's interval.
fn change(limiter: &RateLimiter, cost: u64, used: u64) -> i64 {
    let interval = i64::try_from(SharedBucket::interval_micros(limiter)).unwrap_or(i64::MAX);
    let tokens = |count: u64| i64::try_from(count).unwrap_or(i64::MAX);
    tokens(used).saturating_sub(tokens(cost)).saturating_mul(interval)
}

/// One round trip of the settlement script.
async fn settle_bucket(mut connection: ConnectionManager, key: String, change: i64) -> Result<(), String> {
    let mut invocation = SETTLE.key(key);
    invocation.arg(change);
    SyncFuture::new(invocation.invoke_async::<i64>(&mut connection)).await.map(drop).map_err(|error| error.to_string())
}

/// A `Send` future made `Sync`, for the guard chain's waiting future must be `Sync` and redis' futures
/// are not. Sound without `unsafe`: the mutex is never locked, only reached through `&mut`.
struct SyncFuture<'a, T>(Mutex<Pin<Box<dyn Future<Output = T> + Send + 'a>>>);

impl<'a, T> SyncFuture<'a, T> {
    fn new(future: impl Future<Output = T> + Send + 'a) -> SyncFuture<'a, T> {
        SyncFuture(Mutex::new(Box::pin(future)))
    }
}

impl<T> Future for SyncFuture<'_, T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        self.get_mut().0.get_mut().unwrap_or_else(PoisonError::into_inner).as_mut().poll(cx)
    }
}

/// Whether Redis answers a limiter, and when to ask it again after it did not.
#[derive(Debug, Default)]
pub(super) struct Backend {
    /// Questions that failed or timed out.
    errors: AtomicU64,
    /// Failures since Redis last answered; 0 while it answers.
    failures: AtomicU32,
    /// While Redis is unavailable, the clock's time before which it is not asked; 0 while it answers.
    retry_at: AtomicU64,
    last_error: Mutex<String>,
    /// `on_unavailable = "reject"`.
    reject: AtomicBool,
}

impl Backend {
    pub(super) fn available(&self) -> bool {
        self.failures.load(Ordering::Relaxed) == 0
    }

    pub(super) fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    fn retry_at(&self) -> u64 {
        self.retry_at.load(Ordering::Acquire)
    }

    /// Whether a decision at `now` asks Redis: always while it answers; while it does not, one decision
    /// once the pause is over, which holds the others off for `timeout` (or until it is answered).
    fn may_ask(&self, now: u64, timeout: Duration) -> bool {
        let retry_at = self.retry_at.load(Ordering::Acquire);
        retry_at == 0
            || (now >= retry_at
                && self
                    .retry_at
                    .compare_exchange(
                        retry_at,
                        now + duration_nanos(timeout).max(1),
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    )
                    .is_ok())
    }

    /// Records a failure at `now`, and pauses before the next attempt. The error is logged and shown by
    /// the health check with the secrets of its URLs masked.
    fn failed(&self, limiter: &str, error: String, now: u64) {
        let error = match crate::redact::urls(&error) {
            std::borrow::Cow::Borrowed(_) => error,
            std::borrow::Cow::Owned(redacted) => redacted,
        };
        self.errors.fetch_add(1, Ordering::Relaxed);
        let failures = self.failures.fetch_add(1, Ordering::AcqRel).saturating_add(1);
        let pause = FIRST_BACKOFF.saturating_mul(1 << failures.saturating_sub(1).min(16)).min(MAX_BACKOFF);
        self.retry_at.store(now.saturating_add(duration_nanos(pause)).max(1), Ordering::Release);
        if failures == 1 {
            tracing::warn!(
                target: "hardened::rate_limit",
                limiter,
                error = %error,
                "Redis is unavailable to a global rate limiter; its on_unavailable policy decides until Redis answers"
            );
        }
        *self.last_error.lock().unwrap_or_else(PoisonError::into_inner) = error;
    }

    /// Records an answer: Redis is asked on every decision again.
    fn answered(&self, limiter: &str) {
        if self.failures.load(Ordering::Relaxed) == 0 {
            return;
        }
        self.retry_at.store(0, Ordering::Release);
        if self.failures.swap(0, Ordering::AcqRel) > 0 {
            tracing::info!(target: "hardened::rate_limit", limiter, "Redis answers a global rate limiter again");
        }
    }
}

/// How a global limiter's Redis is doing: what its health check reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[doc(hidden)]
pub struct BackendHealth {
    /// Whether the last question to Redis was answered.
    pub available: bool,
    /// Whether calls are refused while Redis is unavailable (`on_unavailable = "reject"`).
    pub rejecting: bool,
    /// The last failure, if Redis ever failed.
    pub last_error: String,
    /// Questions that failed or timed out.
    pub errors: u64,
}

impl Backend {
    pub(super) fn health(&self) -> BackendHealth {
        BackendHealth {
            available: self.available(),
            rejecting: self.reject.load(Ordering::Relaxed),
            last_error: self.last_error.lock().unwrap_or_else(PoisonError::into_inner).clone(),
            errors: self.errors(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_millis(20);

    fn millis(millis: u64) -> u64 {
        millis * 1_000_000
    }

    #[test]
    fn asks_always_while_redis_answers() {
        let backend = Backend::default();
        assert!(backend.available());
        assert!(backend.may_ask(millis(1), TIMEOUT));
        assert!(backend.may_ask(millis(1), TIMEOUT), "no probe election while healthy");
    }

    #[test]
    fn backs_off_doubling_up_to_the_limit_with_one_probe_at_a_time() {
        let backend = Backend::default();
        backend.failed("api", "refused".into(), millis(1_000));
        assert!(!backend.available());
        assert_eq!(backend.errors(), 1);
        assert!(!backend.may_ask(millis(1_049), TIMEOUT), "within the first pause of 50 ms");
        assert!(backend.may_ask(millis(1_050), TIMEOUT), "the pause is over: one probe");
        assert!(!backend.may_ask(millis(1_050), TIMEOUT), "another caller waits for the probe");
        assert!(backend.may_ask(millis(1_070), TIMEOUT), "a probe that never returned frees the slot");

        backend.failed("api", "refused".into(), millis(2_000));
        assert!(!backend.may_ask(millis(2_099), TIMEOUT), "the second pause is 100 ms");
        assert!(backend.may_ask(millis(2_100), TIMEOUT));
        for _ in 0..20 {
            backend.failed("api", "refused".into(), millis(3_000));
        }
        assert!(!backend.may_ask(millis(4_999), TIMEOUT), "never more than 2 s");
        assert!(backend.may_ask(millis(5_000), TIMEOUT));
        assert_eq!(backend.errors(), 22);
    }

    #[test]
    fn an_answer_ends_the_backoff() {
        let backend = Backend::default();
        backend.failed("api", "refused".into(), millis(1_000));
        backend.answered("api");
        assert!(backend.available());
        assert!(backend.may_ask(millis(1_000), TIMEOUT));
        backend.failed("api", "refused".into(), millis(2_000));
        assert!(!backend.may_ask(millis(2_049), TIMEOUT), "the pause starts from 50 ms again");
    }
}
