//! Rate limiter: a generic cell rate algorithm (GCRA) bucket in a single atomic.
//!
//! The bucket's whole state is its theoretical arrival time; admitting a call is one compare-and-swap.
//! A refusal says exactly when the next call would be admitted. With `wait`, a call that would be
//! admitted within the wait reserves its slot at once and sleeps until then, so waiting callers are
//! served in order and never over-admitted.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
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
    config: RateConfig,
    interval: u64,
    /// How far ahead of now the theoretical arrival time may run: `(burst - 1) * interval`.
    tolerance: u64,
    clock: Clock,
    /// Theoretical arrival time of the next call, in the clock's nanoseconds.
    arrival: AtomicU64,
    admitted: AtomicU64,
    refused: AtomicU64,
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter").field("name", &self.name).field("config", &self.config).finish_non_exhaustive()
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
    pub fn new(name: &'static str, config: RateConfig, clock: Clock) -> RateLimiter {
        let interval = config.interval_nanos();
        let tolerance = interval.saturating_mul(u64::from(config.burst.max(1) - 1));
        let start = clock.now_nanos();
        RateLimiter {
            name,
            config,
            interval,
            tolerance,
            clock,
            arrival: AtomicU64::new(start),
            admitted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// The limiter's name.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The limiter's settings.
    #[must_use]
    pub fn config(&self) -> &RateConfig {
        &self.config
    }

    /// Tokens available now, from 0 to `burst`.
    #[must_use]
    pub fn available(&self) -> u32 {
        let now = self.clock.now_nanos();
        let arrival = self.arrival.load(Ordering::Acquire).max(now);
        let headroom = (now + self.tolerance + self.interval).saturating_sub(arrival);
        u32::try_from(headroom / self.interval).unwrap_or(u32::MAX).min(self.config.burst)
    }

    /// Calls admitted and refused so far.
    #[must_use]
    pub fn decisions(&self) -> (u64, u64) {
        (self.admitted.load(Ordering::Relaxed), self.refused.load(Ordering::Relaxed))
    }

    fn decide(&self, may_wait: u64) -> Decision {
        let now = self.clock.now_nanos();
        let mut arrival = self.arrival.load(Ordering::Acquire);
        loop {
            let start = arrival.max(now);
            let ahead = start - now;
            let delay = ahead.saturating_sub(self.tolerance);
            if delay > may_wait {
                self.refused.fetch_add(1, Ordering::Relaxed);
                return Decision::Refuse { retry_after: delay };
            }
            match self.arrival.compare_exchange_weak(
                arrival,
                start + self.interval,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    self.admitted.fetch_add(1, Ordering::Relaxed);
                    return if delay == 0 { Decision::Admit } else { Decision::AdmitAfter(delay) };
                }
                Err(actual) => arrival = actual,
            }
        }
    }

    /// Takes a token now, or refuses with the time until one is available.
    #[inline]
    pub fn try_acquire(&self) -> Result<(), Rejected> {
        match self.decide(0) {
            Decision::Admit | Decision::AdmitAfter(_) => Ok(()),
            Decision::Refuse { retry_after } => Err(self.refusal(retry_after)),
        }
    }

    /// Takes a token, waiting up to the configured `wait` for one (refusing at once without a `wait`).
    pub async fn acquire(&self) -> Result<(), Rejected> {
        let may_wait = self.config.wait.map_or(0, duration_nanos);
        match self.decide(may_wait) {
            Decision::Admit => Ok(()),
            Decision::AdmitAfter(delay) => {
                tokio::time::sleep(Duration::from_nanos(delay)).await;
                Ok(())
            }
            Decision::Refuse { retry_after } => Err(self.refusal(retry_after)),
        }
    }

    fn refusal(&self, retry_after: u64) -> Rejected {
        Rejected::RateLimited { name: self.name, retry_after: Duration::from_nanos(retry_after) }
    }
}
