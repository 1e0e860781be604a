//! The keys a keyed limiter refused most, for an operator: a space-saving sketch (Metwally, Agrawal and
//! El Abbadi) of a few counters per window, touched only when a call is refused.
//!
//! A key that is refused more often than `1 / COUNTERS` of all refusals in a window is always listed; a
//! count may be over by at most its `error`, the count of the key it replaced.

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Counters per window: the sketch's whole memory.
const COUNTERS: usize = 64;
/// How long one window lasts; [`RefusedKeys::top`] reports the window in progress and the one before.
pub(super) const WINDOW: Duration = Duration::from_mins(1);
/// The longest a key is shown, in characters, so that a huge key does not fill the report.
const SHOWN_CHARS: usize = 120;

/// A key a limiter refused, with how often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedKey {
    /// The key, as its `Debug` shows it (cut to 120 characters).
    pub key: String,
    /// Refusals of this key counted in the last one to two minutes; at most `error` over the true count.
    pub refused: u64,
    /// How much `refused` may overstate the true count: refusals of other keys this counter inherited.
    pub error: u64,
}

#[derive(Debug, Default)]
struct Counter {
    hash: u64,
    key: String,
    count: u64,
    error: u64,
}

#[derive(Debug, Default)]
struct Windows {
    /// When the current window started, in the limiter's clock.
    started: u64,
    current: Vec<Counter>,
    previous: Vec<Counter>,
}

/// The refusals of one keyed limiter, by key.
#[derive(Debug, Default)]
pub(super) struct RefusedKeys {
    windows: Mutex<Windows>,
}

impl RefusedKeys {
    /// Counts a refusal of the key of `hash`, shown as `key`, at `now`.
    pub(super) fn count(&self, hash: u64, key: &dyn fmt::Debug, now: u64) {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        windows.rotate(now);
        let counters = &mut windows.current;
        if let Some(counter) = counters.iter_mut().find(|counter| counter.hash == hash) {
            counter.count += 1;
            return;
        }
        let shown = shown(key);
        if counters.len() < COUNTERS {
            counters.push(Counter { hash, key: shown, count: 1, error: 0 });
            return;
        }
        // The smallest counter goes to the new key, which inherits its count as its possible error.
        if let Some(smallest) = counters.iter_mut().min_by_key(|counter| counter.count) {
            *smallest = Counter { hash, key: shown, count: smallest.count + 1, error: smallest.count };
        }
    }

    /// The `n` keys refused most in the window in progress and the one before, most first.
    pub(super) fn top(&self, n: usize, now: u64) -> Vec<RefusedKey> {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        windows.rotate(now);
        let mut merged: Vec<RefusedKey> = Vec::new();
        let mut hashes: Vec<u64> = Vec::new();
        for counter in windows.previous.iter().chain(&windows.current) {
            if let Some(at) = hashes.iter().position(|hash| *hash == counter.hash) {
                merged[at].refused += counter.count;
                merged[at].error += counter.error;
            } else {
                hashes.push(counter.hash);
                merged.push(RefusedKey { key: counter.key.clone(), refused: counter.count, error: counter.error });
            }
        }
        merged.sort_by(|a, b| b.refused.cmp(&a.refused).then_with(|| a.key.cmp(&b.key)));
        merged.truncate(n);
        merged
    }
}

impl Windows {
    /// Moves to the window of `now`: the current one becomes the previous after one window, and both
    /// are cleared after two.
    fn rotate(&mut self, now: u64) {
        let window = crate::clock::duration_nanos(WINDOW);
        let passed = now.saturating_sub(self.started);
        if passed < window {
            return;
        }
        self.previous = if passed < 2 * window { std::mem::take(&mut self.current) } else { Vec::new() };
        self.current.clear();
        self.started = now - passed % window;
    }
}

/// `key` by its `Debug`, cut to [`SHOWN_CHARS`] characters.
fn shown(key: &dyn fmt::Debug) -> String {
    let mut shown = format!("{key:?}");
    if let Some((at, _)) = shown.char_indices().nth(SHOWN_CHARS) {
        shown.truncate(at);
        shown.push('…');
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    #[test]
    fn the_keys_refused_most_come_first() {
        let keys = RefusedKeys::default();
        for _ in 0..5 {
            keys.count(1, &"alice", 0);
        }
        keys.count(2, &"bob", 0);
        for _ in 0..3 {
            keys.count(3, &"carol", 0);
        }
        let top = keys.top(2, SECOND);
        assert_eq!(
            top.iter().map(|key| (key.key.as_str(), key.refused)).collect::<Vec<_>>(),
            [("\"alice\"", 5), ("\"carol\"", 3)]
        );
        assert!(top.iter().all(|key| key.error == 0));
    }

    #[test]
    fn a_heavy_hitter_is_found_among_many_keys() {
        let keys = RefusedKeys::default();
        for round in 0..10_000_u64 {
            keys.count(round + 100, &round, 0);
            if round % 10 == 0 {
                keys.count(7, &"noisy", 0);
            }
        }
        let top = keys.top(1, 0);
        assert_eq!(top[0].key, "\"noisy\"");
        assert!(top[0].refused >= 1_000 && top[0].refused - top[0].error <= 1_000, "{top:?}");
    }

    #[test]
    fn old_windows_are_forgotten() {
        let keys = RefusedKeys::default();
        keys.count(1, &"alice", 0);
        keys.count(2, &"bob", 61 * SECOND);
        assert_eq!(keys.top(10, 61 * SECOND).len(), 2, "the previous window is still reported");
        assert_eq!(keys.top(10, 121 * SECOND).len(), 1, "alice's window is two windows old");
        assert!(keys.top(10, 300 * SECOND).is_empty());
    }

    #[test]
    fn long_keys_are_cut() {
        let keys = RefusedKeys::default();
        keys.count(1, &"x".repeat(1_000), 0);
        assert_eq!(keys.top(1, 0)[0].key.chars().count(), SHOWN_CHARS + 1);
    }
}
