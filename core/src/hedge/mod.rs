//! Hedging: when the first attempt of a call is slower than the function usually is, start another and
//! take whichever succeeds first, dropping the rest. It cuts the tail of a dependency whose slow calls
//! are slow by chance (a busy replica, a lost packet) for a few percent more calls.
//!
//! A policy waits `after` a fixed time, or a percentile of the latency its calls have shown
//! ([`Latencies`]), and starts at most `max` extra attempts a call. Every hedge spends a token of a
//! budget, the function's retry budget when it has one and otherwise the policy's own, built the same
//! way: calls add `budget_ratio` of a token each, so that in an outage, when every call is slow, hedges
//! stay a small share of the calls instead of doubling them. No token, no hedge.
//!
//! A percentile is trusted once the policy has [`min_samples`] of them (200 for p95, 1,000 for p99):
//! until then calls run without hedges. Functions that share a policy by name share its latencies.

mod latency;
mod settings;

pub use self::latency::{Latencies, RECOMPUTE, min_samples};
pub use self::settings::HedgeSettings;

use std::fmt;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::clock::duration_nanos;
use crate::kind::{Family, Report};

/// When a hedge starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// After this percentile of the latency observed, in thousandths: `950` for p95, `999` for p99.9.
    Percentile(u32),
    /// After a fixed time.
    Fixed(Duration),
}

impl fmt::Display for After {
    /// As the attribute and the configuration write it: `p95`, `p99.9`, `200ms`.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            After::Percentile(permille) if permille % 10 == 0 => write!(formatter, "p{}", permille / 10),
            After::Percentile(permille) => write!(formatter, "p{}.{}", permille / 10, permille % 10),
            After::Fixed(duration) => write!(formatter, "{}", humantime::format_duration(*duration)),
        }
    }
}

/// Settings of one hedging policy.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct HedgeConfig {
    /// When a hedge starts.
    pub after: After,
    /// Extra attempts a call may start: 1 to 3.
    pub max: u32,
    /// Tokens each call adds to the policy's own budget; a hedge spends one.
    pub budget_ratio: f64,
    /// Hedges the budget allows before any call has added to it.
    pub budget_reserve: u32,
}

impl Default for HedgeConfig {
    fn default() -> Self {
        HedgeConfig { after: After::Percentile(950), max: 1, budget_ratio: 0.1, budget_reserve: 10 }
    }
}

const MILLI: i64 = 1_000;

/// Hedges a function started, by result.
#[derive(Debug)]
struct Counts {
    function: &'static str,
    won: u64,
    lost: u64,
}

/// A hedging policy, its latencies and its budget; shared by name between the functions that name it.
pub struct HedgePolicy {
    name: &'static str,
    /// The percentile followed, in thousandths; 0 for a fixed delay.
    permille: AtomicU32,
    /// A fixed delay, in nanoseconds; 0 when a percentile decides.
    fixed: AtomicU64,
    max: AtomicU32,
    latencies: Latencies,
    /// Thousandths of a token each call adds.
    deposit: AtomicI64,
    /// Thousandths of a token the budget holds at most.
    capacity: AtomicI64,
    budget: AtomicI64,
    denied: AtomicU64,
    /// Per function: read at a scrape, written when a hedge ends (a rare path).
    counts: Mutex<Vec<Counts>>,
}

impl fmt::Debug for HedgePolicy {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("HedgePolicy")
            .field("name", &self.name)
            .field("config", &self.config())
            .field("latencies", &self.latencies)
            .finish_non_exhaustive()
    }
}

/// `hardened_hedges_total{function, result}`.
pub static HEDGES: Family = Family {
    name: "hardened_hedges_total",
    help: "Hedges started, by result: won (its result was returned) or lost (cancelled when another attempt \
           finished first).",
    counter: true,
    labels: &["function", "result"],
};

impl HedgePolicy {
    /// A policy; those `#[hardened]` uses are made by the registry.
    #[must_use]
    #[allow(clippy::needless_pass_by_value, reason = "constructors take their settings by value, like builders")]
    pub fn new(name: &'static str, config: HedgeConfig) -> HedgePolicy {
        let policy = HedgePolicy {
            name,
            permille: AtomicU32::new(0),
            fixed: AtomicU64::new(0),
            max: AtomicU32::new(1),
            latencies: Latencies::new(),
            deposit: AtomicI64::new(0),
            capacity: AtomicI64::new(0),
            budget: AtomicI64::new(i64::from(config.budget_reserve.max(1)) * MILLI),
            denied: AtomicU64::new(0),
            counts: Mutex::new(Vec::new()),
        };
        policy.retune(&config);
        policy
    }

    /// Applies new settings to the running policy; the budget keeps its balance, the latencies are kept
    /// unless the percentile followed changes.
    #[allow(clippy::cast_possible_truncation, reason = "the ratio is clamped to lie between 0 and 1")]
    pub fn retune(&self, config: &HedgeConfig) {
        match config.after {
            After::Percentile(permille) => {
                self.fixed.store(0, Ordering::Relaxed);
                if self.permille.swap(permille, Ordering::Relaxed) != permille {
                    self.latencies.recompute(permille);
                }
            }
            After::Fixed(after) => {
                self.permille.store(0, Ordering::Relaxed);
                self.fixed.store(duration_nanos(after).max(1), Ordering::Relaxed);
            }
        }
        self.max.store(config.max.clamp(1, 3), Ordering::Relaxed);
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
    pub fn config(&self) -> HedgeConfig {
        let after = match self.permille.load(Ordering::Relaxed) {
            0 => After::Fixed(Duration::from_nanos(self.fixed.load(Ordering::Relaxed))),
            permille => After::Percentile(permille),
        };
        HedgeConfig {
            after,
            max: self.max.load(Ordering::Relaxed),
            budget_ratio: self.deposit.load(Ordering::Relaxed) as f64 / MILLI as f64,
            budget_reserve: u32::try_from(self.capacity.load(Ordering::Relaxed) / MILLI).unwrap_or(u32::MAX),
        }
    }

    /// How long the first attempt of a call runs before a hedge starts: the fixed delay, or the
    /// percentile last computed; `None` while a percentile has too few samples. One atomic load on a
    /// percentile's path.
    #[inline]
    #[must_use]
    pub fn delay(&self) -> Option<Duration> {
        match self.fixed.load(Ordering::Relaxed) {
            0 => self.latencies.threshold().map(Duration::from_nanos),
            fixed => Some(Duration::from_nanos(fixed)),
        }
    }

    /// Extra attempts a call may start.
    #[must_use]
    pub fn max(&self) -> u32 {
        self.max.load(Ordering::Relaxed)
    }

    /// Adds the latency of an attempt that ran its course (or of a first attempt cancelled after
    /// `nanos`, which it took at least), when a percentile decides.
    #[inline]
    pub fn observe(&self, nanos: u64) {
        let permille = self.permille.load(Ordering::Relaxed);
        if permille != 0 {
            self.latencies.record(nanos, permille);
        }
    }

    /// The latencies observed.
    #[must_use]
    pub fn latencies(&self) -> &Latencies {
        &self.latencies
    }

    /// Adds a call's share to the policy's own budget: done once per call of a function without a retry
    /// policy, whose budget hedges spend otherwise.
    #[inline]
    pub fn deposit(&self) {
        if self.budget.load(Ordering::Relaxed) < self.capacity.load(Ordering::Relaxed) {
            // Racing deposits may overshoot the capacity by a few shares; the next withdrawals absorb it.
            self.budget.fetch_add(self.deposit.load(Ordering::Relaxed), Ordering::AcqRel);
        }
    }

    /// Takes a token of the policy's own budget for one hedge; `false`, counted, when it has none.
    pub fn withdraw(&self) -> bool {
        if self.budget.fetch_sub(MILLI, Ordering::AcqRel) < MILLI {
            self.budget.fetch_add(MILLI, Ordering::AcqRel);
            self.denied.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Whole hedges the policy's own budget holds now.
    #[must_use]
    pub fn budget(&self) -> u64 {
        u64::try_from(self.budget.load(Ordering::Acquire) / MILLI).unwrap_or(0)
    }

    /// Hedges the budget refused (the policy's own, or the retry budget it shares).
    #[must_use]
    pub fn denied(&self) -> u64 {
        self.denied.load(Ordering::Relaxed)
    }

    /// Counts a hedge refused by a retry budget the policy shares.
    pub fn count_denied(&self) {
        self.denied.fetch_add(1, Ordering::Relaxed);
    }

    /// Makes `function`'s series exist, at zero, from now on.
    pub fn count_for(&self, function: &'static str) {
        self.add(function, 0, 0);
    }

    /// Counts `won` hedges whose result was returned and `lost` ones cancelled, for `function`.
    #[cold]
    pub fn count(&self, function: &'static str, won: u64, lost: u64) {
        self.add(function, won, lost);
    }

    fn add(&self, function: &'static str, won: u64, lost: u64) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        match counts.iter_mut().find(|counts| counts.function == function) {
            Some(counts) => {
                counts.won += won;
                counts.lost += lost;
            }
            None => counts.push(Counts { function, won, lost }),
        }
    }

    /// Hedges of `function` that won and that lost.
    #[must_use]
    pub fn counts(&self, function: &str) -> (u64, u64) {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.iter().find(|counts| counts.function == function).map_or((0, 0), |counts| (counts.won, counts.lost))
    }
}

impl crate::kind::GuardKind for HedgePolicy {
    type Config = HedgeConfig;
    type Settings = HedgeSettings;

    const SCHEMA: &'static hardened_schema::Kind = &hardened_schema::hedge::KIND;

    fn layer(settings: &HedgeSettings, config: &mut HedgeConfig) {
        settings.apply_to(config);
    }

    fn build(name: &'static str, config: HedgeConfig) -> HedgePolicy {
        HedgePolicy::new(name, config)
    }

    fn reconfigure(&self, config: &HedgeConfig) {
        self.retune(config);
    }

    fn settings(&self) -> HedgeSettings {
        HedgeSettings::of(&self.config())
    }

    const FAMILIES: &'static [&'static Family] = &[&HEDGES];

    fn report(&self, report: &mut Report) {
        #[allow(clippy::cast_precision_loss, reason = "a counter's exposition is a float")]
        for counts in self.counts.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            report.push(&HEDGES, [counts.function, "won"], counts.won as f64);
            report.push(&HEDGES, [counts.function, "lost"], counts.lost as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_budget_stops_hedges_until_calls_refill_it() {
        let config = HedgeConfig { budget_ratio: 0.1, budget_reserve: 2, ..HedgeConfig::default() };
        let policy = HedgePolicy::new("budget", config);
        assert!(policy.withdraw() && policy.withdraw());
        assert!(!policy.withdraw(), "the reserve of two is spent");
        assert_eq!(policy.denied(), 1);
        // Ten calls at a tenth of a token each pay for one more hedge.
        for _ in 0..9 {
            policy.deposit();
        }
        assert!(!policy.withdraw(), "nine tenths of a token is not a hedge");
        policy.deposit();
        assert!(policy.withdraw());
        assert_eq!((policy.budget(), policy.denied()), (0, 2));
    }

    #[test]
    fn the_delay_is_fixed_or_the_percentile_once_trusted() {
        let fixed = HedgePolicy::new(
            "fixed",
            HedgeConfig { after: After::Fixed(Duration::from_millis(200)), ..HedgeConfig::default() },
        );
        assert_eq!(fixed.delay(), Some(Duration::from_millis(200)));
        fixed.observe(1_000_000);
        assert_eq!(fixed.latencies().samples(), 0, "a fixed delay keeps no latencies");
        let observed = HedgePolicy::new("observed", HedgeConfig::default());
        for _ in 0..199 {
            observed.observe(5_000_000);
        }
        observed.latencies().recompute(950);
        assert_eq!(observed.delay(), None, "199 samples are too few for p95");
        observed.observe(5_000_000);
        observed.latencies().recompute(950);
        let delay = observed.delay().expect("200 samples");
        assert!(delay >= Duration::from_millis(5) && delay < Duration::from_micros(5_700), "{delay:?}");
    }

    #[test]
    fn after_is_written_as_it_is_read() {
        assert_eq!(After::Percentile(950).to_string(), "p95");
        assert_eq!(After::Percentile(999).to_string(), "p99.9");
        assert_eq!(After::Fixed(Duration::from_millis(200)).to_string(), "200ms");
    }

    #[test]
    fn counts_are_kept_per_function() {
        let policy = HedgePolicy::new("shared", HedgeConfig::default());
        policy.count_for("a");
        policy.count("b", 1, 0);
        policy.count("b", 0, 2);
        assert_eq!((policy.counts("a"), policy.counts("b")), ((0, 0), (1, 2)));
        let mut report = Report::default();
        crate::kind::GuardKind::report(&policy, &mut report);
        assert_eq!(report.series.len(), 4);
    }
}
