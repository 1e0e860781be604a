//! What the drain waits for: whatever the layers above register, calls of `#[hardened]` functions and the
//! HTTP request layer's requests, without the shutdown knowing those layers.

use std::sync::{Mutex, PoisonError};

static COUNTS: Mutex<Vec<fn() -> u64>> = Mutex::new(Vec::new());

/// Makes the drain also wait until `count` reads zero. The calls of `#[hardened]` functions and the
/// requests of the `http` feature's request layer register themselves; use it for work counted elsewhere.
/// Registering the same function twice counts it once.
pub fn wait_for_in_flight(count: fn() -> u64) {
    let mut counts = COUNTS.lock().unwrap_or_else(PoisonError::into_inner);
    if !counts.iter().any(|known| std::ptr::fn_addr_eq(*known, count)) {
        counts.push(count);
    }
}

/// What every [`wait_for_in_flight`] count reads, in total.
pub(super) fn in_flight() -> u64 {
    // Copied out, so that no count runs under the lock.
    let counts = COUNTS.lock().unwrap_or_else(PoisonError::into_inner).clone();
    counts.iter().fold(0, |total, count| total.saturating_add(count()))
}
