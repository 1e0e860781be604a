//! How often a breaker moved from one state to another.

use std::sync::atomic::{AtomicU64, Ordering};

use super::BreakerState;

/// Transition counts of one breaker, by `(from, to)`.
#[derive(Debug, Default)]
pub(crate) struct Transitions {
    counts: [[AtomicU64; 5]; 5],
}

impl Transitions {
    pub(crate) fn count(&self, from: BreakerState, to: BreakerState) {
        self.counts[from as usize][to as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Vec<(BreakerState, BreakerState, u64)> {
        self.counted(|_, _| false)
    }

    /// The transitions that happened, and those the breaker makes on its own even before they happen, so
    /// that the first `closed` to `open` is an increase from zero that `rate()` and `increase()` see.
    pub(crate) fn exposed(&self) -> Vec<(BreakerState, BreakerState, u64)> {
        self.counted(|from, to| AUTOMATIC_TRANSITIONS.contains(&(from, to)))
    }

    fn counted(
        &self,
        even_if_zero: impl Fn(BreakerState, BreakerState) -> bool,
    ) -> Vec<(BreakerState, BreakerState, u64)> {
        let mut snapshot = Vec::new();
        for from in BreakerState::ALL {
            for to in BreakerState::ALL {
                let count = self.counts[from as usize][to as usize].load(Ordering::Relaxed);
                if count > 0 || even_if_zero(from, to) {
                    snapshot.push((from, to, count));
                }
            }
        }
        snapshot
    }
}

/// The transitions of the state machine itself; forcing and disabling happen only through the API.
const AUTOMATIC_TRANSITIONS: [(BreakerState, BreakerState); 4] = [
    (BreakerState::Closed, BreakerState::Open),
    (BreakerState::Open, BreakerState::HalfOpen),
    (BreakerState::HalfOpen, BreakerState::Closed),
    (BreakerState::HalfOpen, BreakerState::Open),
];
