//! Time sources.
//!
//! Calls are timed with the CPU's time-stamp counter where it is invariant (the OS clock otherwise);
//! reading it costs a third of `Instant::now()`. Guards read time through a [`Clock`], so tests step a
//! [`ManualClock`] instead of sleeping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The time-stamp counter and the reading every system-clock time is measured from, made together on
/// first use, so that code reading the clock several times checks one `OnceLock` once.
///
/// `quanta` picks the source (the TSC where it is invariant, the OS clock otherwise) and calibrates it;
/// the hot path reads the TSC inline when that is the source, and converts ticks to nanoseconds with one
/// multiplication by a fixed-point scale taken from `quanta`'s calibration, instead of two out-of-line
/// calls per reading.
#[derive(Debug)]
#[doc(hidden)]
pub struct SystemClock {
    counter: quanta::Clock,
    /// Whether `counter` reads the time-stamp counter, which [`SystemClock::ticks`] then reads itself.
    tsc: bool,
    /// Nanoseconds per 2^32 ticks, as `counter` converts them.
    scale: u64,
    origin: u64,
}

impl SystemClock {
    fn new() -> SystemClock {
        let counter = quanta::Clock::new();
        let (before, raw, after) = (read_tsc(), counter.raw(), read_tsc());
        // An OS clock counts nanoseconds, the TSC cycles: only a TSC reading falls between two others.
        let tsc = cfg!(target_arch = "x86_64") && before <= raw && raw <= after;
        let scale = counter.delta_as_nanos(0, SCALE_ONE);
        let origin = counter.raw();
        SystemClock { counter, tsc, scale, origin }
    }

    /// A raw reading, meaningful only as an argument to the methods below.
    #[inline]
    pub(crate) fn ticks(&self) -> u64 {
        if self.tsc { read_tsc() } else { self.counter.raw() }
    }

    /// Nanoseconds between two readings of [`SystemClock::ticks`] (0 if `end` is before `start`).
    #[inline]
    pub(crate) fn nanos_between(&self, start: u64, end: u64) -> u64 {
        self.nanos_of(end.saturating_sub(start))
    }

    /// A reading of [`SystemClock::ticks`] as [`system_nanos`] would have returned it: a call's guards
    /// and its metrics share one reading of the counter.
    #[inline]
    pub(crate) fn nanos_at(&self, ticks: u64) -> u64 {
        self.nanos_between(self.origin, ticks)
    }

    #[inline]
    #[allow(
        clippy::cast_possible_truncation,
        reason = "a count of ticks below 2^64 is fewer nanoseconds than 2^64 at any clock rate quanta accepts"
    )]
    fn nanos_of(&self, ticks: u64) -> u64 {
        ((u128::from(ticks) * u128::from(self.scale)) >> SCALE_BITS) as u64
    }
}

/// The fixed point of [`SystemClock::scale`].
const SCALE_BITS: u32 = 32;
const SCALE_ONE: u64 = 1 << SCALE_BITS;

/// Reads the time-stamp counter (0 where there is none).
#[inline]
#[allow(
    unsafe_code,
    reason = "`_rdtsc` is an unsafe intrinsic with no precondition on x86_64, where every CPU has the instruction"
)]
fn read_tsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `rdtsc` exists on every x86_64 CPU and reads no memory.
    unsafe {
        core::arch::x86_64::_rdtsc()
    }
    #[cfg(not(target_arch = "x86_64"))]
    0
}

/// The process's [`SystemClock`].
#[inline]
pub(crate) fn system() -> &'static SystemClock {
    static SYSTEM: OnceLock<SystemClock> = OnceLock::new();
    SYSTEM.get_or_init(SystemClock::new)
}

/// A raw reading, meaningful only as an argument to [`nanos_since`].
#[inline]
pub(crate) fn ticks() -> u64 {
    system().ticks()
}

/// Nanoseconds elapsed since `start`, a reading of [`ticks`].
#[inline]
pub(crate) fn nanos_since(start: u64) -> u64 {
    let clock = system();
    clock.nanos_between(start, clock.ticks())
}

/// Nanoseconds since the first reading of the process: what [`Clock::system`] reads.
#[inline]
pub(crate) fn system_nanos() -> u64 {
    let clock = system();
    clock.nanos_at(clock.ticks())
}

/// Where guards read the time: the system's monotonic counter, or a clock that tests control.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    source: Source,
}

#[derive(Debug, Clone, Default)]
enum Source {
    #[default]
    System,
    Manual(Arc<AtomicU64>),
    Tokio(tokio::time::Instant),
}

impl Clock {
    /// The system's monotonic clock; what every guard uses unless told otherwise.
    #[must_use]
    pub fn system() -> Clock {
        Clock { source: Source::System }
    }

    /// A clock that stands still until its [`ManualClock`] moves it.
    #[must_use]
    pub fn manual() -> (Clock, ManualClock) {
        let nanos = Arc::new(AtomicU64::new(0));
        (Clock { source: Source::Manual(nanos.clone()) }, ManualClock { nanos })
    }

    /// tokio's clock, which follows `tokio::time::pause` and `advance` in tests, so that guards and
    /// tokio timers (timeouts, backoff, waiting for a permit) share one notion of time.
    #[must_use]
    pub fn tokio() -> Clock {
        Clock { source: Source::Tokio(tokio::time::Instant::now()) }
    }

    /// Nanoseconds since an arbitrary origin fixed for this clock.
    #[inline]
    #[must_use]
    pub fn now_nanos(&self) -> u64 {
        match &self.source {
            Source::System => system_nanos(),
            Source::Manual(nanos) => nanos.load(Ordering::Acquire),
            Source::Tokio(origin) => duration_nanos(origin.elapsed()),
        }
    }
}

/// The handle that moves a [`Clock::manual`].
#[derive(Debug, Clone)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.nanos.fetch_add(duration_nanos(by), Ordering::AcqRel);
    }

    /// The time since the clock's origin.
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::Acquire))
    }
}

/// A duration in nanoseconds, saturating at about 584 years.
#[doc(hidden)]
#[inline]
#[must_use]
pub fn duration_nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
