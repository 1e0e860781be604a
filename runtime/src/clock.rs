//! The clock that times calls: the CPU's time-stamp counter where it is invariant, the OS clock
//! otherwise. Reading it costs a third of `Instant::now()`.

use std::sync::OnceLock;

fn clock() -> &'static quanta::Clock {
    static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();
    CLOCK.get_or_init(quanta::Clock::new)
}

/// A raw reading, meaningful only as an argument to [`nanos_since`].
#[inline]
pub(crate) fn ticks() -> u64 {
    clock().raw()
}

/// Nanoseconds elapsed since `start`, a reading of [`ticks`].
#[inline]
pub(crate) fn nanos_since(start: u64) -> u64 {
    let clock = clock();
    clock.delta_as_nanos(start, clock.raw())
}
