//! Rate limiter: a generic cell rate algorithm (GCRA) bucket in a single atomic.
//!
//! The bucket's whole state is its theoretical arrival time; admitting a call is one compare-and-swap.
//! A refusal says exactly when the next call would be admitted. With `wait`, a call that would be
//! admitted within the wait reserves its slot at once and sleeps until then, so waiting callers are
//! served in order and never over-admitted.

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use crate::clock::{Clock, duration_nanos};
use crate::rejected::Rejected;

/// Settings of one rate limiter.
#[derive(Debug, Clone, PartialEq)]
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
}

impl RateConfig {
    /// `calls` per second, with a burst of the same size.
    #[must_use]
    pub fn per_second(calls: u32) -> RateConfig {
        RateConfig { calls, period: Duration::from_secs(1), burst: calls.max(1), wait: None }
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
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter").field("name", &self.name).field("config", &self.config()).finish_non_exhaustive()
    }
}

/// What one decision of the bucket was.
enum Decision {
    Admit,
    /// Admitted, with a slot reserved this far in the future.
    AdmitAfter(u64),
    Refuse {
        retry_after: u64,
    },
}

impl RateLimiter {
    /// A limiter with its own clock; named limiters used by `#[hardened]` are made by the registry.
    #[must_use]
    #[allow(clippy::needless_pass_by_value, reason = "constructors take their settings by value, like builders")]
    pub fn new(name: &'static str, config: RateConfig, clock: Clock) -> RateLimiter {
        let limiter = RateLimiter {
            name,
            calls: AtomicU32::new(0),
            period: AtomicU64::new(0),
            burst: AtomicU32::new(1),
            wait: AtomicU64::new(0),
            interval: AtomicU64::new(1),
            tolerance: AtomicU64::new(0),
            clock,
            // The origin of the clock: the bucket starts full, whatever time the first caller read.
            arrival: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        };
        limiter.retune(&config);
        limiter
    }

    /// Applies new settings to the running limiter; the bucket keeps its level.
    pub fn retune(&self, config: &RateConfig) {
        let interval = config.interval_nanos();
        self.calls.store(config.calls, Ordering::Relaxed);
        self.period.store(duration_nanos(config.period), Ordering::Relaxed);
        self.burst.store(config.burst.max(1), Ordering::Relaxed);
        self.wait.store(config.wait.map_or(0, duration_nanos), Ordering::Relaxed);
        self.interval.store(interval, Ordering::Relaxed);
        self.tolerance.store(interval.saturating_mul(u64::from(config.burst.max(1) - 1)), Ordering::Relaxed);
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
        RateConfig {
            calls: self.calls.load(Ordering::Relaxed),
            period: Duration::from_nanos(self.period.load(Ordering::Relaxed)),
            burst: self.burst.load(Ordering::Relaxed),
            wait: (wait > 0).then(|| Duration::from_nanos(wait)),
        }
    }

    /// Tokens available now, from 0 to `burst`.
    #[must_use]
    pub fn available(&self) -> u32 {
        let now = self.clock.now_nanos();
        let (interval, tolerance) = (self.interval.load(Ordering::Relaxed), self.tolerance.load(Ordering::Relaxed));
        let arrival = self.arrival.load(Ordering::Acquire).max(now);
        let headroom = (now + tolerance + interval).saturating_sub(arrival);
        u32::try_from(headroom / interval).unwrap_or(u32::MAX).min(self.burst.load(Ordering::Relaxed))
    }

    /// Calls refused so far.
    #[must_use]
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    fn decide(&self, may_wait: u64, now: u64) -> Decision {
        let (interval, tolerance) = (self.interval.load(Ordering::Relaxed), self.tolerance.load(Ordering::Relaxed));
        let mut arrival = self.arrival.load(Ordering::Acquire);
        loop {
            let start = arrival.max(now);
            let ahead = start - now;
            let delay = ahead.saturating_sub(tolerance);
            if delay > may_wait {
                self.refused.fetch_add(1, Ordering::Relaxed);
                return Decision::Refuse { retry_after: delay };
            }
            match self.arrival.compare_exchange_weak(arrival, start + interval, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    return if delay == 0 { Decision::Admit } else { Decision::AdmitAfter(delay) };
                }
                Err(actual) => arrival = actual,
            }
        }
    }

    /// Takes a token now, or refuses with the time until one is available.
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
    /// another caller raced this one, for [`RateLimiter::decide`] to settle.
    #[inline]
    pub(crate) fn take_now(&self, now: u64) -> bool {
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
        match self.decide(0, now) {
            Decision::Admit | Decision::AdmitAfter(_) => Ok(()),
            Decision::Refuse { retry_after } => Err(retry_after),
        }
    }

    /// Whether a call may wait for a token.
    #[inline]
    pub(crate) fn waits(&self) -> bool {
        self.wait.load(Ordering::Relaxed) > 0
    }

    /// Takes a token, waiting up to the configured `wait` for one (refusing at once without a `wait`).
    pub async fn acquire(&self) -> Result<(), Rejected> {
        self.acquire_at(self.clock.now_nanos()).await
    }

    /// [`RateLimiter::acquire`] at a time the caller read from this limiter's clock.
    pub(crate) async fn acquire_at(&self, now: u64) -> Result<(), Rejected> {
        let may_wait = self.wait.load(Ordering::Relaxed);
        match self.decide(may_wait, now) {
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
