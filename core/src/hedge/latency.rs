//! The latency a hedging policy has observed, as a small histogram on atomics, and the percentile of it
//! that decides when a hedge starts.
//!
//! A call reads the delay with one atomic load ([`Latencies::threshold`]); a sample is two atomic adds
//! ([`Latencies::record`]); every [`RECOMPUTE`] samples the one that lands on the boundary walks the
//! buckets and stores the percentile again. Buckets are log-linear (eight per doubling, so a delay is
//! read at most an eighth above its true value) from about a microsecond to about 18 minutes. Counts
//! halve once they reach the window, so that the estimate follows a dependency that changes.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Samples between two computations of the percentile.
pub const RECOMPUTE: u64 = 64;

/// Sub-buckets per doubling, as a power of two.
const SUB_BITS: u32 = 3;
const SUB: usize = 1 << SUB_BITS;
/// Nanoseconds are counted in units of 2^10 ns (about a microsecond).
const UNIT_BITS: u32 = 10;
/// Doublings covered above the linear part: units up to 2^30, about 18 minutes.
const OCTAVES: usize = 28;
const BUCKETS: usize = SUB + OCTAVES * SUB;

/// The samples a percentile in thousandths (`950` for p95) needs before it is trusted: at least ten
/// samples above it, and never fewer than a hundred. p50 and p90 need 100, p95 needs 200, p99 needs
/// 1,000 and p99.9 needs 10,000.
#[must_use]
pub const fn min_samples(permille: u32) -> u64 {
    let above = 1000u64.saturating_sub(permille as u64);
    let needed = match 10_000u64.checked_div(above) {
        Some(needed) => needed,
        None => u64::MAX,
    };
    if needed < 100 { 100 } else { needed }
}

/// The samples kept at most: counts halve when they reach it, which keeps at least half of it, so an
/// estimate once trusted stays trusted.
const fn window(permille: u32) -> u64 {
    4 * min_samples(permille)
}

/// The bucket of `nanos`.
fn bucket(nanos: u64) -> usize {
    let units = nanos >> UNIT_BITS;
    if units < SUB as u64 {
        // `units` is below 8 here.
        return usize::try_from(units).unwrap_or(0);
    }
    let octave = units.ilog2();
    let sub = usize::try_from((units >> (octave - SUB_BITS)) & (SUB as u64 - 1)).unwrap_or(0);
    let index = (octave - SUB_BITS + 1) as usize * SUB + sub;
    index.min(BUCKETS - 1)
}

/// The upper bound of bucket `index`, in nanoseconds.
fn upper_bound(index: usize) -> u64 {
    let index = index as u64;
    let sub = SUB as u64;
    let units = if index < sub {
        index + 1
    } else {
        let shift = index / sub - 1;
        ((sub + index % sub) << shift) + (1 << shift)
    };
    units << UNIT_BITS
}

/// A histogram of latencies and the percentile last computed from it.
pub struct Latencies {
    buckets: [AtomicU32; BUCKETS],
    samples: AtomicU64,
    /// The delay computed last, in nanoseconds; 0 while there are too few samples.
    threshold: AtomicU64,
}

impl std::fmt::Debug for Latencies {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Latencies")
            .field("samples", &self.samples.load(Ordering::Relaxed))
            .field("threshold", &self.threshold.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies::new()
    }
}

impl Latencies {
    /// An empty histogram, which gives no percentile yet.
    #[must_use]
    pub fn new() -> Latencies {
        Latencies {
            buckets: std::array::from_fn(|_| AtomicU32::new(0)),
            samples: AtomicU64::new(0),
            threshold: AtomicU64::new(0),
        }
    }

    /// The percentile last computed, in nanoseconds; `None` while there are too few samples.
    #[inline]
    #[must_use]
    pub fn threshold(&self) -> Option<u64> {
        match self.threshold.load(Ordering::Relaxed) {
            0 => None,
            nanos => Some(nanos),
        }
    }

    /// Samples counted since the histogram was made (halving does not lower it).
    #[must_use]
    pub fn samples(&self) -> u64 {
        self.samples.load(Ordering::Relaxed)
    }

    /// Adds a latency of `nanos`; every [`RECOMPUTE`] samples, computes percentile `permille` (in
    /// thousandths) again.
    pub fn record(&self, nanos: u64, permille: u32) {
        self.buckets[bucket(nanos)].fetch_add(1, Ordering::Relaxed);
        let samples = self.samples.fetch_add(1, Ordering::Relaxed) + 1;
        if samples.is_multiple_of(RECOMPUTE) {
            self.recompute(permille);
        }
    }

    /// Computes percentile `permille` of the samples held and stores it, or none while there are too
    /// few; halves the counts when they reach the window.
    #[cold]
    pub fn recompute(&self, permille: u32) {
        let counts: [u64; BUCKETS] =
            std::array::from_fn(|index| u64::from(self.buckets[index].load(Ordering::Relaxed)));
        let total: u64 = counts.iter().sum();
        if total >= window(permille) {
            for cell in &self.buckets {
                let count = cell.load(Ordering::Relaxed);
                cell.fetch_sub(count / 2, Ordering::Relaxed);
            }
        }
        let threshold = if total < min_samples(permille) {
            0
        } else {
            // The smallest bucket with at least `permille` thousandths of the samples at or below it.
            let rank = (total * u64::from(permille)).div_ceil(1000).max(1);
            let mut seen = 0;
            let index = counts
                .iter()
                .position(|count| {
                    seen += count;
                    seen >= rank
                })
                .unwrap_or(BUCKETS - 1);
            upper_bound(index)
        };
        self.threshold.store(threshold, Ordering::Relaxed);
    }

    /// Forgets every sample, as when the percentile to follow changes.
    pub fn clear(&self) {
        for cell in &self.buckets {
            cell.store(0, Ordering::Relaxed);
        }
        self.threshold.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_each_latency_within_an_eighth() {
        let mut last = 0;
        for index in 0..BUCKETS {
            let upper = upper_bound(index);
            assert!(upper > last, "bounds increase at {index}");
            // Every value of the bucket lies below its bound, and the one just below the bound is in it.
            assert_eq!(bucket(upper - 1), index, "{upper}");
            last = upper;
        }
        for nanos in [1_000u64, 37_000, 999_999, 10_000_000, 123_456_789, 4_000_000_000] {
            let upper = upper_bound(bucket(nanos));
            assert!(upper > nanos && upper - nanos <= nanos / 8 + 1024, "{nanos} read as {upper}");
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
        assert_eq!(bucket(0), 0);
    }

    #[test]
    fn no_percentile_before_enough_samples() {
        assert_eq!((min_samples(500), min_samples(950), min_samples(990), min_samples(999)), (100, 200, 1000, 10_000));
        let latencies = Latencies::new();
        for _ in 0..192 {
            latencies.record(1_000_000, 950);
        }
        assert_eq!(latencies.threshold(), None, "192 samples, p95 needs 200");
        for _ in 0..64 {
            latencies.record(1_000_000, 950);
        }
        assert!(latencies.threshold().is_some());
    }

    #[test]
    fn the_percentile_is_within_an_eighth_of_the_true_one() {
        // Latencies 1 ms to 100 ms, evenly: p50 is 50 ms, p95 is 95 ms, p99 is 99 ms.
        for (permille, expected) in [(500u32, 50_000_000u64), (950, 95_000_000), (990, 99_000_000)] {
            let latencies = Latencies::new();
            for _ in 0..20 {
                // Interleaved so that each recompute sees the whole spread.
                for millis in 1..=100u64 {
                    latencies.record(millis * 1_000_000, permille);
                }
            }
            latencies.recompute(permille);
            let found = latencies.threshold().expect("enough samples");
            assert!(found >= expected && found <= expected + expected / 8, "p{permille}: {found} for {expected}");
        }
    }

    #[test]
    fn the_estimate_follows_a_dependency_that_slows_down() {
        let latencies = Latencies::new();
        for _ in 0..2000 {
            latencies.record(10_000_000, 950);
        }
        let before = latencies.threshold().expect("enough samples");
        assert!(before < 12_000_000, "{before}");
        // Ten times slower from now on: the window halves the old samples away.
        for _ in 0..4000 {
            latencies.record(100_000_000, 950);
        }
        let after = latencies.threshold().expect("enough samples");
        assert!((100_000_000..115_000_000).contains(&after), "{after}");
    }

    #[test]
    fn a_heavy_tail_above_the_percentile_does_not_move_it() {
        // 1% of samples fifty times slower: p95 stays at the fast value, p99.9 sees the tail.
        let latencies = Latencies::new();
        let tail = Latencies::new();
        for call in 0..20_000u64 {
            let nanos = if call % 100 == 7 { 500_000_000 } else { 10_000_000 };
            latencies.record(nanos, 950);
            tail.record(nanos, 999);
        }
        assert!(latencies.threshold().is_some_and(|nanos| nanos < 12_000_000));
        assert!(tail.threshold().is_some_and(|nanos| nanos >= 500_000_000));
    }
}
