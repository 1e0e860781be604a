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
#[derive(Debug)]
pub(crate) struct SystemClock {
    counter: quanta::Clock,
    origin: u64,
}

impl SystemClock {
    /// A raw reading, meaningful only as an argument to the methods below.
    #[inline]
    pub(crate) fn ticks(&self) -> u64 {
        self.counter.raw()
    }

    /// Nanoseconds between two readings of [`SystemClock::ticks`].
    #[inline]
    pub(crate) fn nanos_between(&self, start: u64, end: u64) -> u64 {
        self.counter.delta_as_nanos(start, end)
    }

    /// A reading of [`SystemClock::ticks`] as [`system_nanos`] would have returned it: a call's guards
    /// and its metrics share one reading of the counter.
    #[inline]
    pub(crate) fn nanos_at(&self, ticks: u64) -> u64 {
        self.counter.delta_as_nanos(self.origin, ticks)
    }
}

/// The process's [`SystemClock`].
#[inline]
pub(crate) fn system() -> &'static SystemClock {
    static SYSTEM: OnceLock<SystemClock> = OnceLock::new();
    SYSTEM.get_or_init(|| {
        let counter = quanta::Clock::new();
        let origin = counter.raw();
        SystemClock { counter, origin }
    })
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
#[inline]
pub(crate) fn duration_nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
