//! Retry: exponential backoff with jitter, within a budget so that retries cannot multiply the load on a
//! dependency that is already failing.
//!
//! The budget is a bucket of tokens shared by every function using the same retry name: each call adds
//! `budget_ratio` of a token, each retry takes a whole one, and a reserve of `budget_reserve` tokens lets
//! rarely-called functions retry at all. During an outage retries therefore stay near `budget_ratio` of
//! the calls instead of multiplying them by `attempts`.

mod settings;

pub use self::settings::RetrySettings;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use crate::clock::duration_nanos;

/// Settings of one retry policy.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RetryConfig {
    /// Retries after the first attempt: a call runs at most `attempts + 1` times.
    pub attempts: u32,
    /// The delay before the first retry; it doubles for each further one.
    pub backoff: Duration,
    /// The largest delay between two attempts.
    pub max_backoff: Duration,
    /// Whether each delay is drawn at random between half its value and its value, so that callers
    /// that failed together do not retry together.
    pub jitter: bool,
    /// Tokens each call adds to the budget; a retry spends one.
    pub budget_ratio: f64,
    /// Retries the budget allows before any call has added to it.
    pub budget_reserve: u32,
}

impl RetryConfig {
    /// `attempts` retries with the default backoff and budget.
    #[must_use]
    pub fn attempts(attempts: u32) -> RetryConfig {
        RetryConfig { attempts, ..RetryConfig::default() }
    }

    /// The delay before retry number `retry` (0 for the first), without jitter: the upper bound.
    #[must_use]
    pub fn backoff_bound(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry).unwrap_or(u32::MAX);
        self.backoff.saturating_mul(factor).min(self.max_backoff)
    }

    /// The delay before retry number `retry` (0 for the first): the bound, or with `jitter` a time drawn
    /// between half the bound and the bound.
    #[must_use]
    pub fn backoff_delay(&self, retry: u32) -> Duration {
        let bound = self.backoff_bound(retry);
        if !self.jitter {
            return bound;
        }
        let bound_nanos = duration_nanos(bound);
        let half = bound_nanos / 2;
        Duration::from_nanos(half + fastrand::u64(0..=bound_nanos - half))
    }
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            attempts: 2,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            jitter: true,
            budget_ratio: 0.2,
            budget_reserve: 10,
        }
    }
}

const MILLI: i64 = 1_000;

/// A retry policy and its budget; shared by name between every function that names it.
pub struct RetryPolicy {
    name: &'static str,
    attempts: AtomicU32,
    backoff: AtomicU64,
    max_backoff: AtomicU64,
    jitter: AtomicBool,
    /// Thousandths of a token each call adds.
    deposit: AtomicI64,
    /// Thousandths of a token the budget holds at most.
    capacity: AtomicI64,
    budget: AtomicI64,
    retried: AtomicU64,
    denied: AtomicU64,
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy").field("name", &self.name).field("config", &self.config()).finish_non_exhaustive()
    }
}

impl RetryPolicy {
    /// A policy; named policies used by `#[hardened]` are made by the registry.
    #[must_use]
    #[allow(clippy::needless_pass_by_value, reason = "constructors take their settings by value, like builders")]
    pub fn new(name: &'static str, config: RetryConfig) -> RetryPolicy {
        let policy = RetryPolicy {
            name,
            attempts: AtomicU32::new(0),
            backoff: AtomicU64::new(0),
            max_backoff: AtomicU64::new(0),
            jitter: AtomicBool::new(false),
            deposit: AtomicI64::new(0),
            capacity: AtomicI64::new(0),
            budget: AtomicI64::new(i64::from(config.budget_reserve.max(1)) * MILLI),
            retried: AtomicU64::new(0),
            denied: AtomicU64::new(0),
        };
        policy.retune(&config);
        policy
    }

    /// Applies new settings to the running policy; the budget keeps its balance.
    #[allow(clippy::cast_possible_truncation, reason = "the ratio is clamped to lie between 0 and 1")]
    pub fn retune(&self, config: &RetryConfig) {
        self.attempts.store(config.attempts, Ordering::Relaxed);
        self.backoff.store(duration_nanos(config.backoff), Ordering::Relaxed);
        self.max_backoff.store(duration_nanos(config.max_backoff), Ordering::Relaxed);
        self.jitter.store(config.jitter, Ordering::Relaxed);
        let deposit = (config.budget_ratio.clamp(0.0, 1.0) * MILLI as f64).round() as i64;
        self.deposit.store(deposit, Ordering::Relaxed);
        self.capacity.store(i64::from(config.budget_reserve.max(1)) * MILLI, Ordering::Relaxed);
    }

    /// The policy's name.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The settings in force.
    #[must_use]
    pub fn config(&self) -> RetryConfig {
        RetryConfig {
            attempts: self.attempts.load(Ordering::Relaxed),
            backoff: Duration::from_nanos(self.backoff.load(Ordering::Relaxed)),
            max_backoff: Duration::from_nanos(self.max_backoff.load(Ordering::Relaxed)),
            jitter: self.jitter.load(Ordering::Relaxed),
            budget_ratio: self.deposit.load(Ordering::Relaxed) as f64 / MILLI as f64,
            budget_reserve: u32::try_from(self.capacity.load(Ordering::Relaxed) / MILLI).unwrap_or(u32::MAX),
        }
    }

    /// Retries made, and retries (or hedges, which spend the same budget) the budget refused.
    #[must_use]
    pub fn counts(&self) -> (u64, u64) {
        (self.retried.load(Ordering::Relaxed), self.denied.load(Ordering::Relaxed))
    }

    /// Whole retries the budget holds now.
    #[must_use]
    pub fn budget(&self) -> u64 {
        u64::try_from(self.budget.load(Ordering::Acquire) / MILLI).unwrap_or(0)
    }

    /// Adds a call's share to the budget; done once per call, before its first attempt.
    #[inline]
    pub fn deposit(&self) {
        let current = self.budget.load(Ordering::Relaxed);
        if current < self.capacity.load(Ordering::Relaxed) {
            // Racing deposits may overshoot the capacity by a few shares; the next withdrawals absorb it.
            self.budget.fetch_add(self.deposit.load(Ordering::Relaxed), Ordering::AcqRel);
        }
    }

    /// Takes one token of the budget, for a retry or for a hedge (which a function with both spends from
    /// this budget too); `false`, counted as denied, when it holds less than one.
    pub fn withdraw(&self) -> bool {
        if self.budget.fetch_sub(MILLI, Ordering::AcqRel) < MILLI {
            self.budget.fetch_add(MILLI, Ordering::AcqRel);
            self.denied.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// The delay before retry number `retry` (0 for the first), or `None` when attempts are used up or
    /// the budget refuses. `at_least` is a delay the refusing guard asked for (a rate limiter's
    /// `retry_after`).
    pub fn next_delay(&self, retry: u32, at_least: Option<Duration>) -> Option<Duration> {
        if retry >= self.attempts.load(Ordering::Relaxed) || !self.withdraw() {
            return None;
        }
        self.retried.fetch_add(1, Ordering::Relaxed);
        let delay = self.config().backoff_delay(retry);
        Some(at_least.map_or(delay, |floor| delay.max(floor)))
    }
}

impl crate::kind::GuardKind for RetryPolicy {
    type Config = RetryConfig;
    type Settings = RetrySettings;

    const SCHEMA: &'static hardened_schema::Kind = &hardened_schema::retry::KIND;

    fn layer(settings: &RetrySettings, config: &mut RetryConfig) {
        settings.apply_to(config);
    }

    fn build(name: &'static str, config: RetryConfig) -> RetryPolicy {
        RetryPolicy::new(name, config)
    }

    fn reconfigure(&self, config: &RetryConfig) {
        self.retune(config);
    }

    fn settings(&self) -> RetrySettings {
        RetrySettings::of(&self.config())
    }

    // Retries are counted per function, with its calls (`hardened_retries_total`).
    const FAMILIES: &'static [&'static crate::kind::Family] = &[];

    fn report(&self, _: &mut crate::kind::Report) {}
}
