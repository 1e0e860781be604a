//! Adaptive limits: the limit follows the dependency's latency, as Netflix's concurrency-limits do.
//!
//! Each call that held a permit reports its round trip (from the permit's grant to its return) and
//! whether it was dropped (timed out). The samples add up in atomics; once a window of them is in (as
//! many as the limit, and at least [`MIN_WINDOW`]), the call that completes it runs the algorithm on the
//! window's average round trip, under a lock no other call waits for (it is tried, never waited on),
//! and sets the limit. Calls of a fixed limit report nothing: its slots have no observer.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use crate::slots::{Observe, Slots};

/// How a concurrency limit is set: a fixed number, or an algorithm that adapts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// At most this many calls in flight.
    Fixed(u32),
    /// Adapted to the dependency's latency, between the limit's `min` and `max`.
    Adaptive(Algorithm),
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Fixed(limit) => write!(f, "{limit}"),
            Limit::Adaptive(algorithm) => f.write_str(algorithm.word()),
        }
    }
}

/// An algorithm that adapts a concurrency limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// Additive increase, multiplicative decrease: one more each window whose calls were neither dropped
    /// nor slower than [`AIMD_TOLERANCE`] times the fastest window seen; a tenth less otherwise.
    Aimd,
    /// TCP Vegas: estimates the calls queued at the dependency from the ratio of the fastest round trip to
    /// the current one, and steps the limit up while few are, down when many are.
    Vegas,
    /// The gradient of the fastest round trip to the current one: the limit is multiplied by it (at most
    /// 1, at least one half) and given a little headroom, smoothed over windows.
    Gradient,
}

impl Algorithm {
    /// Every algorithm, in the order of the schema's words.
    pub const ALL: [Algorithm; 3] = [Algorithm::Aimd, Algorithm::Vegas, Algorithm::Gradient];

    /// The word that names it in the attribute and the configuration.
    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            Algorithm::Aimd => "aimd",
            Algorithm::Vegas => "vegas",
            Algorithm::Gradient => "gradient",
        }
    }

    /// The algorithm named `word`.
    #[must_use]
    pub fn from_word(word: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|algorithm| algorithm.word() == word)
    }
}

/// The limit an adaptive limit starts at, within its `min` and `max`: a fixed limit's default.
pub const START: u32 = 10;

/// The fewest samples in a window.
pub const MIN_WINDOW: u32 = 8;

/// AIMD backs off when a window's round trip exceeds the fastest one seen by this factor.
pub const AIMD_TOLERANCE: f64 = 1.2;

/// The gradient counts a round trip up to this factor of the fastest one as unloaded: room for jitter.
const GRADIENT_TOLERANCE: f64 = 1.1;

/// The share of a new estimate the gradient's limit moves by each window.
const GRADIENT_SMOOTHING: f64 = 0.2;

/// AIMD's multiplicative decrease.
const AIMD_BACKOFF: f64 = 0.9;

/// One adaptive limit's estimate, updated once per window of calls; no clock: a window is a number of
/// calls, so a test drives it sample by sample.
#[derive(Debug, Clone)]
pub struct Estimator {
    algorithm: Algorithm,
    min: u32,
    max: u32,
    limit: f64,
    /// The fastest window's round trip, in nanoseconds: the dependency unloaded. 0 until the first window.
    baseline: u64,
}

impl Estimator {
    /// An estimate by `algorithm` between `min` and `max` (`min` ≤ `max`), starting at `start` brought
    /// within them.
    #[must_use]
    pub fn new(algorithm: Algorithm, min: u32, max: u32, start: u32) -> Estimator {
        let max = max.max(min);
        Estimator { algorithm, min, max, limit: f64::from(start.clamp(min, max)), baseline: 0 }
    }

    /// The algorithm.
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The limit now: whole, within `min` and `max`.
    #[must_use]
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "kept within min and max, both u32")]
    pub fn limit(&self) -> u32 {
        (self.limit.round() as u32).clamp(self.min, self.max)
    }

    /// The round trip taken as the dependency's unloaded one, in nanoseconds (0 before any window).
    #[must_use]
    pub fn baseline(&self) -> u64 {
        self.baseline
    }

    /// Takes in one window: its calls' average round trip `rtt` (nanoseconds), whether any was dropped,
    /// and the calls in flight at its end; returns the new limit.
    #[allow(clippy::cast_precision_loss, reason = "round trips in nanoseconds are far below 2^52")]
    pub fn update(&mut self, rtt: u64, dropped: bool, in_flight: u32) -> u32 {
        if rtt > 0 && (self.baseline == 0 || rtt < self.baseline) {
            self.baseline = rtt;
        }
        let limit = self.limit;
        // Calls in flight far under the limit say nothing of whether more would be served as fast.
        let limited_by_callers = f64::from(in_flight) * 2.0 < limit;
        let ratio = if rtt == 0 { 1.0 } else { self.baseline as f64 / rtt as f64 };
        let steps = limit.log10().max(1.0);
        let next = match self.algorithm {
            Algorithm::Aimd => {
                if dropped || ratio * AIMD_TOLERANCE < 1.0 {
                    limit * AIMD_BACKOFF
                } else if limited_by_callers {
                    limit
                } else {
                    limit + 1.0
                }
            }
            Algorithm::Vegas => {
                let queued = limit * (1.0 - ratio);
                let (alpha, beta) = (3.0 * steps, 6.0 * steps);
                if dropped {
                    limit - steps
                } else if limited_by_callers {
                    limit
                } else if queued <= steps {
                    limit + beta
                } else if queued < alpha {
                    limit + steps
                } else if queued > beta {
                    limit - steps
                } else {
                    limit
                }
            }
            Algorithm::Gradient => {
                let gradient = if dropped { 0.5 } else { (GRADIENT_TOLERANCE * ratio).clamp(0.5, 1.0) };
                let estimate = limit * gradient + steps;
                let estimate = if limited_by_callers { estimate.min(limit) } else { estimate };
                limit * (1.0 - GRADIENT_SMOOTHING) + estimate * GRADIENT_SMOOTHING
            }
        };
        self.limit = next.clamp(f64::from(self.min), f64::from(self.max));
        // At its floor the limit lets as few calls through as it may: their round trip is the dependency's
        // unloaded one now, which may have grown for good (a slower dependency, not a busier one).
        if self.limit() <= self.min && rtt > 0 {
            self.baseline = rtt;
        }
        self.limit()
    }
}

/// The samples of an adaptive limit's current window, and its estimate: the observer of its slots.
#[derive(Debug)]
pub(crate) struct Adaptive {
    samples: AtomicU32,
    rtt_sum: AtomicU64,
    dropped: AtomicBool,
    /// The last window's average round trip, in nanoseconds, for the gauge.
    rtt: AtomicU64,
    /// Whether the limit adapts: a limit made fixed again by a reload keeps its observer, which then
    /// ignores the samples.
    active: AtomicBool,
    /// `None` while the limit is fixed.
    estimator: Mutex<Option<Estimator>>,
}

impl Adaptive {
    pub(crate) fn new(estimator: Option<Estimator>) -> Adaptive {
        Adaptive {
            samples: AtomicU32::new(0),
            rtt_sum: AtomicU64::new(0),
            dropped: AtomicBool::new(false),
            rtt: AtomicU64::new(0),
            active: AtomicBool::new(estimator.is_some()),
            estimator: Mutex::new(estimator),
        }
    }

    /// Replaces the estimate (`None` for a fixed limit), starting a new window.
    pub(crate) fn set(&self, estimator: Option<Estimator>) {
        let mut current = self.estimator.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.active.store(estimator.is_some(), Ordering::Relaxed);
        *current = estimator;
        self.samples.store(0, Ordering::Relaxed);
        self.rtt_sum.store(0, Ordering::Relaxed);
        self.dropped.store(false, Ordering::Relaxed);
    }

    /// The estimate now, if the limit adapts.
    pub(crate) fn estimator(&self) -> Option<Estimator> {
        self.estimator.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The last window's average round trip, in seconds.
    #[allow(clippy::cast_precision_loss, reason = "a gauge")]
    pub(crate) fn rtt_seconds(&self) -> f64 {
        self.rtt.load(Ordering::Relaxed) as f64 / 1e9
    }
}

impl Observe for Adaptive {
    fn queued(&self, queued_nanos: u64) {
        if self.active.load(Ordering::Relaxed) {
            // Wrapping: taken off before the call's round trip adds it back, maybe in the next window.
            self.rtt_sum.fetch_sub(queued_nanos, Ordering::Relaxed);
        }
    }

    fn observe(&self, slots: &Slots, rtt_nanos: u64, dropped: bool) {
        if !self.active.load(Ordering::Relaxed) {
            return;
        }
        self.rtt_sum.fetch_add(rtt_nanos, Ordering::Relaxed);
        if dropped {
            self.dropped.store(true, Ordering::Relaxed);
        }
        let samples = self.samples.fetch_add(1, Ordering::AcqRel) + 1;
        if samples < slots.max().max(MIN_WINDOW) {
            return;
        }
        // The call that completes the window updates the estimate; one that finds it being updated leaves
        // its sample to the next window.
        let Ok(mut estimator) = self.estimator.try_lock() else { return };
        let samples = self.samples.swap(0, Ordering::AcqRel);
        let rtt_sum = self.rtt_sum.swap(0, Ordering::AcqRel);
        let dropped = self.dropped.swap(false, Ordering::AcqRel);
        if samples == 0 {
            return;
        }
        // The sum is of round trips less the waits of calls still in flight (see `queued`): below zero
        // only in a window that ended between a wait and its call's end.
        #[allow(clippy::cast_possible_wrap, clippy::cast_sign_loss, reason = "a wrapping sum read as signed")]
        let rtt = (rtt_sum as i64).max(0) as u64 / u64::from(samples);
        self.rtt.store(rtt, Ordering::Relaxed);
        if let Some(estimator) = estimator.as_mut() {
            let limit = estimator.update(rtt, dropped, slots.in_use());
            if limit != slots.max() {
                slots.set_max(limit);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    /// An estimate of `algorithm` from 1 to 1000 starting at `start`, its baseline set by a first window
    /// at 100 ms with every call in flight.
    fn warmed(algorithm: Algorithm, start: u32) -> Estimator {
        let mut estimator = Estimator::new(algorithm, 1, 1000, start);
        estimator.update(100 * MS, false, start);
        estimator
    }

    #[test]
    fn aimd_adds_one_while_fast_and_busy_and_backs_off_by_a_tenth() {
        let mut aimd = Estimator::new(Algorithm::Aimd, 1, 1000, 20);
        assert_eq!(aimd.update(100 * MS, false, 20), 21);
        assert_eq!(aimd.update(110 * MS, false, 21), 22, "within the tolerance");
        assert_eq!(aimd.update(100 * MS, false, 5), 22, "callers use under half: no evidence for more");
        assert_eq!(aimd.update(130 * MS, false, 22), 20, "slower than 1.2 times the fastest: 22 * 0.9");
        assert_eq!(aimd.update(100 * MS, true, 20), 18, "a dropped call");
        assert_eq!(aimd.baseline(), 100 * MS);
    }

    #[test]
    fn vegas_steps_by_the_calls_it_estimates_queued() {
        let mut vegas = warmed(Algorithm::Vegas, 100);
        // log10(100) = 2: alpha 6, beta 12. At the baseline nothing is queued: up by beta.
        assert_eq!(vegas.limit(), 112);
        // 112 * (1 - 100/125) = 22.4 queued, over beta: down by log10(112).
        assert_eq!(vegas.update(125 * MS, false, 112), 110);
        // 110 * (1 - 100/104) = 4.2 queued, under alpha: up by log10.
        assert_eq!(vegas.update(104 * MS, false, 110), 112);
        // 112 * (1 - 100/108) = 8.3 queued, between alpha and beta: unchanged.
        assert_eq!(vegas.update(108 * MS, false, 112), 112);
        assert_eq!(vegas.update(100 * MS, true, 112), 110, "a dropped call");
    }

    #[test]
    fn gradient_follows_the_ratio_of_unloaded_to_current_latency() {
        let mut gradient = warmed(Algorithm::Gradient, 100);
        // At the baseline: 100 + 0.2 * log10(100) = 100.4.
        assert_eq!(gradient.limit(), 100);
        // Twice the baseline: the gradient is 1.1 / 2 = 0.55; 0.8 * 100.4 + 0.2 * (100.4 * 0.55 + 2) = 91.8.
        assert_eq!(gradient.update(200 * MS, false, 100), 92);
        // Steadily slow, it keeps falling; never by more than half a window's smoothing.
        let before = gradient.limit();
        assert!(gradient.update(400 * MS, false, 91) >= before * 9 / 10);
        for _ in 0..50 {
            gradient.update(400 * MS, false, 1000);
        }
        assert!(gradient.limit() < 20, "{}", gradient.limit());
        // Fast again, it grows.
        let low = gradient.limit();
        for _ in 0..50 {
            gradient.update(100 * MS, false, 1000);
        }
        assert!(gradient.limit() > low + 10, "{low} -> {}", gradient.limit());
    }

    #[test]
    fn every_algorithm_stays_within_min_and_max() {
        for algorithm in Algorithm::ALL {
            let mut estimator = Estimator::new(algorithm, 5, 12, 100);
            assert_eq!(estimator.limit(), 12, "{algorithm:?} starts within its bounds");
            for _ in 0..100 {
                estimator.update(100 * MS, false, 12);
            }
            assert_eq!(estimator.limit(), 12, "{algorithm:?}");
            for _ in 0..100 {
                estimator.update(900 * MS, true, 12);
            }
            assert_eq!(estimator.limit(), 5, "{algorithm:?}");
        }
    }

    #[test]
    fn a_limit_at_its_floor_learns_the_slower_latency_as_unloaded() {
        let mut gradient = Estimator::new(Algorithm::Gradient, 2, 100, 10);
        gradient.update(100 * MS, false, 10);
        for _ in 0..200 {
            gradient.update(300 * MS, false, 100);
        }
        assert_eq!(gradient.baseline(), 300 * MS, "the dependency is slower for good");
        for _ in 0..200 {
            gradient.update(300 * MS, false, 100);
        }
        assert!(gradient.limit() > 50, "and the limit grows back: {}", gradient.limit());
    }

    #[test]
    fn algorithms_are_the_schemas_words() {
        let words: Vec<&str> = Algorithm::ALL.iter().map(|algorithm| algorithm.word()).collect();
        assert_eq!(words, hardened_schema::CONCURRENCY_ALGORITHMS);
        assert_eq!(Algorithm::from_word("vegas"), Some(Algorithm::Vegas));
        assert_eq!(Algorithm::from_word("gradient2"), None);
        assert_eq!(Limit::Adaptive(Algorithm::Aimd).to_string(), "aimd");
        assert_eq!(Limit::Fixed(8).to_string(), "8");
    }
}
