//! What the drain waits for: calls of `#[hardened]` functions in flight, and whatever else a layer above
//! registers (the HTTP request layer's requests), without the shutdown knowing those layers.

use std::sync::{Mutex, PoisonError};

static MORE: Mutex<Vec<fn() -> u64>> = Mutex::new(Vec::new());

/// Makes the drain also wait until `count` reads zero: for work counted outside `#[hardened]` functions,
/// such as the requests of [`http::RequestLayer`](crate::http), which registers itself. Registering the
/// same function twice counts it once.
pub fn wait_for_in_flight(count: fn() -> u64) {
    let mut more = MORE.lock().unwrap_or_else(PoisonError::into_inner);
    if !more.iter().any(|known| std::ptr::fn_addr_eq(*known, count)) {
        more.push(count);
    }
}

/// Calls of `#[hardened]` functions (with metrics) in flight, plus what [`wait_for`] registered.
pub(super) fn in_flight() -> u64 {
    // Copied out, so that no count runs under the lock.
    let more = MORE.lock().unwrap_or_else(PoisonError::into_inner).clone();
    more.iter().fold(crate::metrics::in_flight(), |total, count| total.saturating_add(count()))
}
