//! Circuit breaker: stops calling a dependency that keeps failing, and probes it before trusting it again.
//!
//! States: `closed` (calls flow, outcomes fill a sliding window), `open` (calls are refused for
//! `open_for`), `half_open` (exactly `half_open_calls` probes are admitted; one failure reopens, all of
//! them succeeding closes), plus `forced_open` and `disabled` set through the runtime API.
//!
//! Everything on the call path is atomics: admitting a call in the closed state is one load. Recording a
//! success that changes nothing (the count window holds only successes, or no failure is running) is
//! loads only, checked inline; other outcomes take two read-modify-writes on the window, and a third only
//! when the window's counts change. Calls made through a `#[hardened]` function count their outcomes in
//! that function's per-thread metric cells, so two threads sharing a breaker write no common cache line
//! while it stays closed and healthy.

mod settings;
mod transitions;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

pub use self::settings::BreakerSettings;
use self::transitions::Transitions;
use crate::clock::{Clock, duration_nanos};
use crate::rejected::Rejected;

/// How the sliding window is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// The last `window` calls.
    Count,
    /// The calls of the last `window` seconds.
    Time,
}

impl WindowKind {
    /// The configuration spelling: `count` or `time`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            WindowKind::Count => "count",
            WindowKind::Time => "time",
        }
    }
}

/// Settings of one circuit breaker.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BreakerConfig {
    /// Failure percentage (1 to 100) of the window at or above which the breaker opens.
    pub failure_rate: u8,
    /// Percentage (1 to 100) of slow calls at or above which the breaker opens.
    pub slow_rate: u8,
    /// A call lasting at least this long is slow.
    pub slow_call: Duration,
    /// Window size: calls for [`WindowKind::Count`], seconds for [`WindowKind::Time`].
    pub window: u32,
    /// How the window is measured.
    pub window_kind: WindowKind,
    /// Calls the window must hold before rates are judged.
    pub min_calls: u32,
    /// How long the breaker stays open before probing.
    pub open_for: Duration,
    /// Probes admitted in the half-open state.
    pub half_open_calls: u32,
    /// When set, the breaker opens after this many failures in a row instead of judging rates.
    pub consecutive_failures: Option<u32>,
    /// Whether a failure reported while open (by a call admitted before it opened) restarts `open_for`.
    pub extend_open_on_failure: bool,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_rate: 50,
            slow_rate: 100,
            slow_call: Duration::from_mins(1),
            window: 100,
            window_kind: WindowKind::Count,
            min_calls: 10,
            open_for: Duration::from_secs(30),
            half_open_calls: 3,
            consecutive_failures: None,
            extend_open_on_failure: false,
        }
    }
}

/// The state of a breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls flow and their outcomes are counted.
    Closed,
    /// Calls are refused until `open_for` has passed.
    Open,
    /// A limited number of probes decide whether to close or reopen.
    HalfOpen,
    /// Held open through the API until closed or reset.
    ForcedOpen,
    /// Every call is admitted and nothing is counted.
    Disabled,
}

impl BreakerState {
    pub(crate) const ALL: [BreakerState; 5] = [
        BreakerState::Closed,
        BreakerState::Open,
        BreakerState::HalfOpen,
        BreakerState::ForcedOpen,
        BreakerState::Disabled,
    ];

    /// The label value: `closed`, `open`, `half_open`, `forced_open` or `disabled`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
            BreakerState::ForcedOpen => "forced_open",
            BreakerState::Disabled => "disabled",
        }
    }

    /// The value of `hardened_circuit_breaker_state`: 0 closed, 1 open (or forced open), 2 half-open,
    /// 3 disabled.
    #[must_use]
    pub fn gauge_value(self) -> i64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open | BreakerState::ForcedOpen => 1,
            BreakerState::HalfOpen => 2,
            BreakerState::Disabled => 3,
        }
    }

    fn from_code(code: u8) -> BreakerState {
        Self::ALL.get(usize::from(code)).copied().unwrap_or(BreakerState::Closed)
    }

    fn code(self) -> u8 {
        self as u8
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counts of calls the breaker saw, by result (the `result` label of `hardened_circuit_breaker_calls_total`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BreakerCounts {
    /// Calls that succeeded in time.
    pub success: u64,
    /// Calls that failed.
    pub failure: u64,
    /// Calls that succeeded but were slow.
    pub slow: u64,
    /// Calls refused because the breaker was open.
    pub not_permitted: u64,
}

/// What the window holds right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowTotals {
    /// Calls in the window.
    pub calls: u32,
    /// Failed calls in the window.
    pub failures: u32,
    /// Slow calls in the window (failed or not).
    pub slow: u32,
}

const FIELD_BITS: u32 = 21;
const FIELD_MASK: u64 = (1 << FIELD_BITS) - 1;

fn pack(totals: WindowTotals) -> u64 {
    u64::from(totals.calls) | (u64::from(totals.failures) << FIELD_BITS) | (u64::from(totals.slow) << (2 * FIELD_BITS))
}

#[allow(clippy::cast_possible_truncation, reason = "each field is masked to 21 bits")]
fn unpack(packed: u64) -> WindowTotals {
    WindowTotals {
        calls: (packed & FIELD_MASK) as u32,
        failures: ((packed >> FIELD_BITS) & FIELD_MASK) as u32,
        slow: ((packed >> (2 * FIELD_BITS)) & FIELD_MASK) as u32,
    }
}

/// Largest window, in calls or seconds: the schema's range for `window`, which the packed counts must
/// hold (2^20 at most: checked at compile time).
#[allow(clippy::cast_possible_truncation, reason = "checked against 2^20 first")]
pub(crate) const MAX_WINDOW: u32 = match hardened_schema::breaker::Key::Window.spec().value {
    hardened_schema::Value::Whole { max, .. } if max <= 1 << 20 => max as u32,
    _ => panic!("the packed window counts hold at most 2^20 calls or seconds"),
};

/// The outcome of one call as a window slot: bit 0 present, bit 1 failed, bit 2 slow.
fn slot_code(failed: bool, slow: bool) -> u8 {
    1 | (u8::from(failed) << 1) | (u8::from(slow) << 2)
}

fn code_totals(code: u8) -> WindowTotals {
    WindowTotals { calls: u32::from(code & 1), failures: u32::from((code >> 1) & 1), slow: u32::from((code >> 2) & 1) }
}

/// Division by a fixed divisor without a division instruction (Lemire's fastmod), for the window's ring
/// index on every call.
#[derive(Debug)]
struct FastMod {
    divisor: u32,
    magic: u64,
}

impl FastMod {
    fn new(divisor: usize) -> FastMod {
        let divisor = u32::try_from(divisor.max(1)).unwrap_or(u32::MAX);
        FastMod { divisor, magic: (u64::MAX / u64::from(divisor)).wrapping_add(1) }
    }

    #[inline]
    #[allow(clippy::cast_possible_truncation, reason = "the high half of a 64x32-bit product is below the divisor")]
    fn remainder(&self, value: u32) -> usize {
        let low = self.magic.wrapping_mul(u64::from(value));
        ((u128::from(low) * u128::from(self.divisor)) >> 64) as usize
    }
}

/// The sliding window: a ring of outcomes (count) or of one-second buckets (time), with running totals.
#[derive(Debug)]
enum Window {
    Count {
        cursor: AtomicU32,
        divisor: FastMod,
        slots: Box<[AtomicU8]>,
        totals: AtomicU64,
        /// `totals` when every slot holds a success that was not slow.
        all_succeeded: u64,
    },
    Time {
        buckets: Box<[TimeBucket]>,
    },
}

#[derive(Debug, Default)]
struct TimeBucket {
    second: AtomicU64,
    totals: AtomicU64,
}

impl Window {
    fn new(kind: WindowKind, size: u32) -> Window {
        let size = size.clamp(1, MAX_WINDOW) as usize;
        match kind {
            WindowKind::Count => Window::Count {
                cursor: AtomicU32::new(0),
                divisor: FastMod::new(size),
                slots: (0..size).map(|_| AtomicU8::new(0)).collect(),
                totals: AtomicU64::new(0),
                all_succeeded: pack(WindowTotals {
                    calls: u32::try_from(size).unwrap_or(MAX_WINDOW),
                    failures: 0,
                    slow: 0,
                }),
            },
            WindowKind::Time => Window::Time { buckets: (0..size).map(|_| TimeBucket::default()).collect() },
        }
    }

    /// Whether adding a success that was not slow would leave the window as it is: a count window whose
    /// every slot holds such a success. Which slot the success replaces then makes no difference, so
    /// it need not be written at all (and two threads do not fight over the cursor).
    #[inline]
    fn unchanged_by_success(&self) -> bool {
        match self {
            Window::Count { totals, all_succeeded, .. } => totals.load(Ordering::Acquire) == *all_succeeded,
            Window::Time { .. } => false,
        }
    }

    /// Adds one outcome; returns the totals after it, and whether they changed.
    fn record(&self, failed: bool, slow: bool, now: u64) -> (WindowTotals, bool) {
        let code = slot_code(failed, slow);
        match self {
            Window::Count { cursor, divisor, slots, totals, .. } => {
                // The cursor wraps at 2^32 calls, where one slot is written out of turn: harmless.
                let index = divisor.remainder(cursor.fetch_add(1, Ordering::Relaxed));
                let old = slots[index].swap(code, Ordering::AcqRel);
                if old == code {
                    // Same outcome in and out: the totals did not move.
                    return (unpack(totals.load(Ordering::Acquire)), false);
                }
                let (added, removed) = (code_totals(code), code_totals(old));
                let mut current = totals.load(Ordering::Acquire);
                loop {
                    let mut next = unpack(current);
                    next.calls = next.calls + added.calls - removed.calls.min(next.calls);
                    next.failures = next.failures + added.failures - removed.failures.min(next.failures);
                    next.slow = next.slow + added.slow - removed.slow.min(next.slow);
                    match totals.compare_exchange_weak(current, pack(next), Ordering::AcqRel, Ordering::Acquire) {
                        Ok(_) => return (next, true),
                        Err(actual) => current = actual,
                    }
                }
            }
            Window::Time { buckets } => {
                let second = now / 1_000_000_000;
                let bucket = &buckets[(second % buckets.len() as u64) as usize];
                let seen = bucket.second.load(Ordering::Acquire);
                if seen != second
                    && bucket.second.compare_exchange(seen, second, Ordering::AcqRel, Ordering::Acquire).is_ok()
                {
                    bucket.totals.store(0, Ordering::Release);
                }
                bucket.totals.fetch_add(pack(code_totals(code)), Ordering::AcqRel);
                (self.totals(now), true)
            }
        }
    }

    fn totals(&self, now: u64) -> WindowTotals {
        match self {
            Window::Count { totals, .. } => unpack(totals.load(Ordering::Acquire)),
            Window::Time { buckets } => {
                let second = now / 1_000_000_000;
                let oldest = second.saturating_sub(buckets.len() as u64 - 1);
                buckets
                    .iter()
                    .filter(|bucket| (oldest..=second).contains(&bucket.second.load(Ordering::Acquire)))
                    .map(|bucket| unpack(bucket.totals.load(Ordering::Acquire)))
                    .fold(WindowTotals::default(), |sum, bucket| WindowTotals {
                        calls: sum.calls + bucket.calls,
                        failures: sum.failures + bucket.failures,
                        slow: sum.slow + bucket.slow,
                    })
            }
        }
    }

    fn clear(&self) {
        match self {
            Window::Count { slots, totals, .. } => {
                for slot in slots {
                    slot.store(0, Ordering::Relaxed);
                }
                totals.store(0, Ordering::Release);
            }
            Window::Time { buckets } => {
                for bucket in buckets {
                    bucket.totals.store(0, Ordering::Relaxed);
                    bucket.second.store(u64::MAX, Ordering::Release);
                }
            }
        }
    }
}

/// Hot state, kept together on one cache line, which a call through the closed breaker only reads.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Hot {
    state: AtomicU8,
    /// Bumped on every transition, so that permits of an earlier state are not counted in a later one.
    epoch: AtomicU32,
    consecutive: AtomicU32,
    opened_at: AtomicU64,
    probes_admitted: AtomicU32,
    probes_succeeded: AtomicU32,
}

/// Calls seen, by result, on a line of their own. Calls made through a `#[hardened]` function with
/// metrics count success, failure and slow in the function's per-thread metric cells instead, which the
/// breaker reads through the [`VerdictCounts`] it was given; `baseline` holds what those held at the last
/// [`CircuitBreaker::reset`].
#[derive(Debug, Default)]
#[repr(align(64))]
struct Counts {
    shared: [AtomicU64; 4],
    baseline: [AtomicU64; Verdict::COUNT],
}

/// What a breaker made of a call it admitted, as `hardened_circuit_breaker_calls_total` counts it: an
/// index below [`Verdict::COUNT`] that the optimiser knows to be one, so counting it checks no bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
#[doc(hidden)]
pub enum Verdict {
    Success = 0,
    Failure = 1,
    Slow = 2,
}

impl Verdict {
    /// Verdicts there are.
    pub(crate) const COUNT: usize = 3;

    /// The verdict's cell among [`Verdict::COUNT`].
    #[inline]
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Verdicts counted somewhere other than the breaker: a function's per-thread metric cells, which keep two
/// threads sharing a breaker from writing one cache line. The breaker adds them up when asked for its counts.
pub(crate) trait VerdictCounts: Send + Sync {
    /// The verdicts counted so far, by [`Verdict::index`].
    fn verdict_totals(&self) -> [u64; Verdict::COUNT];
}

/// The cell of refused calls in [`Counts::shared`], after the verdicts.
const NOT_PERMITTED: usize = Verdict::COUNT;

/// The settings a running breaker reads, retunable while calls are in flight. The window's size and kind
/// shape its storage and stay as built.
#[derive(Debug)]
struct LiveSettings {
    failure_rate: AtomicU8,
    slow_rate: AtomicU8,
    slow_call: AtomicU64,
    min_calls: AtomicU32,
    open_for: AtomicU64,
    half_open_calls: AtomicU32,
    /// 0 when the breaker judges rates.
    consecutive_failures: AtomicU32,
    extend_open_on_failure: AtomicBool,
    window: u32,
    window_kind: WindowKind,
}

impl LiveSettings {
    fn new(config: &BreakerConfig) -> LiveSettings {
        let live = LiveSettings {
            failure_rate: AtomicU8::new(0),
            slow_rate: AtomicU8::new(0),
            slow_call: AtomicU64::new(0),
            min_calls: AtomicU32::new(0),
            open_for: AtomicU64::new(0),
            half_open_calls: AtomicU32::new(0),
            consecutive_failures: AtomicU32::new(0),
            extend_open_on_failure: AtomicBool::new(false),
            window: config.window,
            window_kind: config.window_kind,
        };
        live.store(config);
        live
    }

    fn store(&self, config: &BreakerConfig) {
        self.failure_rate.store(config.failure_rate, Ordering::Relaxed);
        self.slow_rate.store(config.slow_rate, Ordering::Relaxed);
        self.slow_call.store(duration_nanos(config.slow_call), Ordering::Relaxed);
        self.min_calls.store(config.min_calls.max(1), Ordering::Relaxed);
        self.open_for.store(duration_nanos(config.open_for), Ordering::Relaxed);
        self.half_open_calls.store(config.half_open_calls, Ordering::Relaxed);
        self.consecutive_failures.store(config.consecutive_failures.unwrap_or(0), Ordering::Relaxed);
        self.extend_open_on_failure.store(config.extend_open_on_failure, Ordering::Relaxed);
    }

    fn load(&self) -> BreakerConfig {
        BreakerConfig {
            failure_rate: self.failure_rate.load(Ordering::Relaxed),
            slow_rate: self.slow_rate.load(Ordering::Relaxed),
            slow_call: Duration::from_nanos(self.slow_call.load(Ordering::Relaxed)),
            window: self.window,
            window_kind: self.window_kind,
            min_calls: self.min_calls.load(Ordering::Relaxed),
            open_for: Duration::from_nanos(self.open_for.load(Ordering::Relaxed)),
            half_open_calls: self.half_open_calls.load(Ordering::Relaxed),
            consecutive_failures: Some(self.consecutive_failures.load(Ordering::Relaxed)).filter(|run| *run > 0),
            extend_open_on_failure: self.extend_open_on_failure.load(Ordering::Relaxed),
        }
    }
}

/// A circuit breaker. Shared by name between every function that names it; see [`crate::breaker()`].
pub struct CircuitBreaker {
    name: &'static str,
    settings: LiveSettings,
    clock: Clock,
    hot: Hot,
    counts: Counts,
    window: Window,
    transitions: Transitions,
    /// Where the functions using this breaker count its verdicts (warm path only: counts and reset).
    counted_elsewhere: Mutex<Vec<&'static dyn VerdictCounts>>,
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.name)
            .field("state", &self.state())
            .field("config", &self.config())
            .finish_non_exhaustive()
    }
}

/// How a permit was granted, which decides where its outcome is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admission {
    Closed,
    Probe,
    Untracked,
}

impl CircuitBreaker {
    /// A breaker with its own clock; named breakers used by `#[hardened]` are made by the registry.
    #[must_use]
    #[allow(clippy::needless_pass_by_value, reason = "constructors take their settings by value, like builders")]
    pub fn new(name: &'static str, config: BreakerConfig, clock: Clock) -> CircuitBreaker {
        let window = Window::new(config.window_kind, config.window);
        CircuitBreaker {
            name,
            settings: LiveSettings::new(&config),
            clock,
            hot: Hot::default(),
            counts: Counts::default(),
            window,
            transitions: Transitions::default(),
            counted_elsewhere: Mutex::new(Vec::new()),
        }
    }

    /// The breaker's name.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The settings in force.
    #[must_use]
    pub fn config(&self) -> BreakerConfig {
        self.settings.load()
    }

    /// Applies new settings to the running breaker, keeping its state, window and permits. The window's
    /// size and kind shape its storage: changing them takes a restart, and this returns `false` when they
    /// differ from the running ones.
    pub fn retune(&self, config: &BreakerConfig) -> bool {
        self.settings.store(config);
        config.window == self.settings.window && config.window_kind == self.settings.window_kind
    }

    /// The current state. An open breaker whose `open_for` has passed reports `open` until a call probes it.
    #[must_use]
    pub fn state(&self) -> BreakerState {
        BreakerState::from_code(self.hot.state.load(Ordering::Acquire))
    }

    /// Calls seen, by result.
    #[must_use]
    pub fn counts(&self) -> BreakerCounts {
        let per_thread = self.per_thread_counts();
        let read = |index: usize| {
            let shared = self.counts.shared[index].load(Ordering::Relaxed);
            match (per_thread.get(index), self.counts.baseline.get(index)) {
                (Some(counted), Some(baseline)) => {
                    shared.wrapping_add(counted.wrapping_sub(baseline.load(Ordering::Relaxed)))
                }
                _ => shared,
            }
        };
        BreakerCounts {
            success: read(Verdict::Success.index()),
            failure: read(Verdict::Failure.index()),
            slow: read(Verdict::Slow.index()),
            not_permitted: read(NOT_PERMITTED),
        }
    }

    /// What the functions using this breaker counted in their per-thread metric cells.
    fn per_thread_counts(&self) -> [u64; Verdict::COUNT] {
        let mut counts = [0u64; Verdict::COUNT];
        for source in self.counted_elsewhere.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            for (count, counted) in counts.iter_mut().zip(source.verdict_totals()) {
                *count = count.wrapping_add(counted);
            }
        }
        counts
    }

    /// Adds `source` to the places this breaker's verdicts are counted: a function that uses it, once.
    pub(crate) fn count_in(&self, source: &'static dyn VerdictCounts) {
        let mut sources = self.counted_elsewhere.lock().unwrap_or_else(PoisonError::into_inner);
        if !sources.iter().any(|known| std::ptr::addr_eq(*known, source)) {
            sources.push(source);
        }
    }

    /// Counts an outcome of [`BreakerPermit::settle`] that no function's metric cells counted.
    pub(crate) fn count_shared(&self, verdict: Verdict) {
        self.counts.shared[verdict.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// How long an open breaker stays open before the next call probes it: `None` unless the state is
    /// [`BreakerState::Open`], zero once `open_for` has passed and no call has probed it yet. Read for
    /// operators, off the call path.
    #[must_use]
    pub fn open_remaining(&self) -> Option<Duration> {
        if self.state() != BreakerState::Open {
            return None;
        }
        let reopens_at =
            self.hot.opened_at.load(Ordering::Acquire).saturating_add(self.settings.open_for.load(Ordering::Relaxed));
        Some(Duration::from_nanos(reopens_at.saturating_sub(self.clock.now_nanos())))
    }

    /// What the sliding window holds now.
    #[must_use]
    pub fn window_totals(&self) -> WindowTotals {
        self.window.totals(self.clock.now_nanos())
    }

    /// Transitions so far, as `(from, to, count)`.
    #[must_use]
    pub fn transitions(&self) -> Vec<(BreakerState, BreakerState, u64)> {
        self.transitions.snapshot()
    }

    /// Asks to make a call: a permit to report its outcome with, or a refusal.
    #[inline]
    pub fn try_acquire(&self) -> Result<BreakerPermit<'_>, Rejected> {
        self.try_acquire_at(self.clock.now_nanos())
    }

    /// [`CircuitBreaker::try_acquire`] at a time the caller read from this breaker's clock.
    #[inline]
    pub(crate) fn try_acquire_at(&self, now: u64) -> Result<BreakerPermit<'_>, Rejected> {
        self.admit_at(now).ok_or_else(|| self.open_refusal())
    }

    /// A permit at `now`, or `None` for a refusal (counted; [`CircuitBreaker::open_refusal`] spells it
    /// out): the guard chain keeps the refusal small until it is reported.
    #[inline]
    pub(crate) fn admit_at(&self, now: u64) -> Option<BreakerPermit<'_>> {
        let state = self.hot.state.load(Ordering::Acquire);
        if state == BreakerState::Closed.code() {
            return Some(self.permit(Admission::Closed, now));
        }
        self.admit_slow(BreakerState::from_code(state), now)
    }

    #[cold]
    fn admit_slow(&self, state: BreakerState, now: u64) -> Option<BreakerPermit<'_>> {
        match state {
            BreakerState::Closed => Some(self.permit(Admission::Closed, now)),
            BreakerState::Disabled => Some(self.permit(Admission::Untracked, now)),
            BreakerState::ForcedOpen => self.refuse(),
            BreakerState::Open => {
                let reopens_at = self
                    .hot
                    .opened_at
                    .load(Ordering::Acquire)
                    .saturating_add(self.settings.open_for.load(Ordering::Relaxed));
                if now < reopens_at {
                    return self.refuse();
                }
                self.transition(BreakerState::Open, BreakerState::HalfOpen, now);
                self.admit_slow(self.state(), now)
            }
            BreakerState::HalfOpen => {
                let mut admitted = self.hot.probes_admitted.load(Ordering::Acquire);
                loop {
                    if admitted >= self.settings.half_open_calls.load(Ordering::Relaxed) {
                        return self.refuse();
                    }
                    match self.hot.probes_admitted.compare_exchange_weak(
                        admitted,
                        admitted + 1,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => return Some(self.permit(Admission::Probe, now)),
                        Err(actual) => admitted = actual,
                    }
                }
            }
        }
    }

    #[inline]
    fn permit(&self, admission: Admission, started_at: u64) -> BreakerPermit<'_> {
        let epoch = self.hot.epoch.load(Ordering::Acquire);
        BreakerPermit { breaker: self, admission, epoch, started_at }
    }

    /// Counts a refusal.
    fn refuse(&self) -> Option<BreakerPermit<'_>> {
        self.counts.shared[NOT_PERMITTED].fetch_add(1, Ordering::Relaxed);
        None
    }

    /// What a refusal by this breaker reports.
    #[cold]
    pub(crate) fn open_refusal(&self) -> Rejected {
        Rejected::CircuitOpen { name: self.name }
    }

    /// Moves from `from` to `to` if the breaker is still in `from`; returns whether this call did it.
    fn transition(&self, from: BreakerState, to: BreakerState, now: u64) -> bool {
        if self.hot.state.compare_exchange(from.code(), to.code(), Ordering::AcqRel, Ordering::Acquire).is_err() {
            return false;
        }
        self.enter(from, to, now);
        true
    }

    /// Resets what the new state starts from, then announces the transition.
    fn enter(&self, from: BreakerState, to: BreakerState, now: u64) {
        self.hot.epoch.fetch_add(1, Ordering::AcqRel);
        match to {
            BreakerState::Open | BreakerState::ForcedOpen => self.hot.opened_at.store(now, Ordering::Release),
            BreakerState::HalfOpen => {
                self.hot.probes_succeeded.store(0, Ordering::Release);
                self.hot.probes_admitted.store(0, Ordering::Release);
            }
            BreakerState::Closed | BreakerState::Disabled => {
                self.window.clear();
                self.hot.consecutive.store(0, Ordering::Release);
            }
        }
        self.transitions.count(from, to);
        crate::events::transition(self.name, from.as_str(), to.as_str());
        tracing::info!(
            target: "hardened::breaker",
            breaker = self.name,
            from = from.as_str(),
            to = to.as_str(),
            "circuit breaker changed state"
        );
    }

    /// Whether a call that took `elapsed` nanoseconds is slow.
    #[inline]
    fn is_slow(&self, elapsed: u64) -> bool {
        elapsed >= self.settings.slow_call.load(Ordering::Relaxed)
    }

    /// Whether a success that was not slow, admitted while closed in `epoch`, would change nothing but
    /// the counts: the breaker is still closed in that epoch, and neither its run of failures nor its
    /// window would move. The common case, checked inline with loads only.
    #[inline]
    fn success_changes_nothing(&self, epoch: u32) -> bool {
        self.hot.state.load(Ordering::Acquire) == BreakerState::Closed.code()
            && self.hot.epoch.load(Ordering::Acquire) == epoch
            && if self.settings.consecutive_failures.load(Ordering::Relaxed) > 0 {
                self.hot.consecutive.load(Ordering::Relaxed) == 0
            } else {
                self.window.unchanged_by_success()
            }
    }

    /// Judges an outcome; returns the result to count, if any.
    fn record(&self, admission: Admission, epoch: u32, failed: bool, slow: bool, now: u64) -> Option<Verdict> {
        if admission == Admission::Untracked {
            return None;
        }
        let result = match (failed, slow) {
            (true, _) => Verdict::Failure,
            (false, true) => Verdict::Slow,
            (false, false) => Verdict::Success,
        };
        self.judge(admission, epoch, failed, slow, now);
        Some(result)
    }

    fn judge(&self, admission: Admission, epoch: u32, failed: bool, slow: bool, now: u64) {
        let current_epoch = self.hot.epoch.load(Ordering::Acquire);
        let state = self.state();
        match admission {
            Admission::Closed if state == BreakerState::Closed && epoch == current_epoch => {
                self.judge_closed(failed, slow, now);
            }
            Admission::Closed
                if state == BreakerState::Open
                    && failed
                    && self.settings.extend_open_on_failure.load(Ordering::Relaxed) =>
            {
                self.hot.opened_at.fetch_max(now, Ordering::AcqRel);
            }
            Admission::Probe if state == BreakerState::HalfOpen && epoch == current_epoch => {
                if failed || slow {
                    self.transition(BreakerState::HalfOpen, BreakerState::Open, now);
                } else if self.hot.probes_succeeded.fetch_add(1, Ordering::AcqRel) + 1
                    >= self.settings.half_open_calls.load(Ordering::Relaxed)
                {
                    self.transition(BreakerState::HalfOpen, BreakerState::Closed, now);
                }
            }
            _ => {}
        }
    }

    fn judge_closed(&self, failed: bool, slow: bool, now: u64) {
        let threshold = self.settings.consecutive_failures.load(Ordering::Relaxed);
        if threshold > 0 {
            if failed {
                let run = self.hot.consecutive.fetch_add(1, Ordering::AcqRel) + 1;
                if run >= threshold {
                    self.transition(BreakerState::Closed, BreakerState::Open, now);
                }
            } else if self.hot.consecutive.load(Ordering::Relaxed) != 0 {
                self.hot.consecutive.store(0, Ordering::Release);
            }
            return;
        }
        let (totals, changed) = self.window.record(failed, slow, now);
        // A success that left the totals as they were cannot cross a threshold the last change did not.
        if (changed || failed || slow) && self.exceeds_thresholds(totals) {
            self.transition(BreakerState::Closed, BreakerState::Open, now);
        }
    }

    fn exceeds_thresholds(&self, totals: WindowTotals) -> bool {
        let calls = u64::from(totals.calls);
        let settings = &self.settings;
        calls >= u64::from(settings.min_calls.load(Ordering::Relaxed))
            && (u64::from(totals.failures) * 100 >= u64::from(settings.failure_rate.load(Ordering::Relaxed)) * calls
                || u64::from(totals.slow) * 100 >= u64::from(settings.slow_rate.load(Ordering::Relaxed)) * calls)
    }

    /// Gives back a probe slot whose call never reported (refused by an inner guard, or cancelled).
    fn release(&self, admission: Admission, epoch: u32) {
        if admission == Admission::Probe && epoch == self.hot.epoch.load(Ordering::Acquire) {
            self.hot.probes_admitted.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Holds the breaker open until [`CircuitBreaker::close`] or [`CircuitBreaker::reset`].
    pub fn force_open(&self) {
        self.set(BreakerState::ForcedOpen);
    }

    /// Closes the breaker and clears its window.
    pub fn close(&self) {
        self.set(BreakerState::Closed);
    }

    /// Admits every call and counts nothing, until closed or reset.
    pub fn disable(&self) {
        self.set(BreakerState::Disabled);
    }

    /// Back to closed with an empty window and zeroed counters.
    pub fn reset(&self) {
        self.set(BreakerState::Closed);
        for count in &self.counts.shared {
            count.store(0, Ordering::Relaxed);
        }
        for (baseline, counted) in self.counts.baseline.iter().zip(self.per_thread_counts()) {
            baseline.store(counted, Ordering::Relaxed);
        }
    }

    fn set(&self, to: BreakerState) {
        let from = BreakerState::from_code(self.hot.state.swap(to.code(), Ordering::AcqRel));
        if from != to {
            self.enter(from, to, self.clock.now_nanos());
        } else if to == BreakerState::Closed {
            self.window.clear();
        }
    }
}

/// Permission to make one call; report how it went with [`BreakerPermit::record`].
///
/// Dropped without a report, it counts as a failure while the thread panics, and is otherwise given
/// back uncounted (the call was cancelled, or refused by an inner guard).
#[derive(Debug)]
#[must_use = "a permit that is dropped counts nothing"]
pub struct BreakerPermit<'a> {
    breaker: &'a CircuitBreaker,
    admission: Admission,
    epoch: u32,
    started_at: u64,
}

impl<'a> BreakerPermit<'a> {
    /// Reports the call's outcome: `failed` is the outcome rule's verdict (a timeout is a failure).
    #[inline]
    pub fn record(self, failed: bool) {
        let (breaker, now) = (self.breaker, self.breaker.clock.now_nanos());
        let elapsed = now.saturating_sub(self.started_at);
        if let Some(result) = self.settle(failed, elapsed, now) {
            breaker.count_shared(result);
        }
    }

    /// Reports the outcome of a call that took `elapsed` nanoseconds and ended at `now`, both read from
    /// the breaker's clock, and returns the result (success, failure, slow) the caller must count: in
    /// a function's per-thread metric cells, or with [`CircuitBreaker::count_shared`]. A closed breaker's
    /// success that changes nothing is settled inline.
    #[inline]
    pub(crate) fn settle(self, failed: bool, elapsed: u64, now: u64) -> Option<Verdict> {
        let result = self.outcome(failed, elapsed, |_| now);
        // Settled: nothing is left for the drop to do.
        std::mem::forget(self);
        result
    }

    /// What [`BreakerPermit::settle`] does before it forgets the permit: read in place, so that a caller
    /// holding the permit in a larger value does not move it out first. The end time, `ended`, is
    /// worked out only when the breaker needs it: a success that changes nothing does not.
    #[inline]
    fn outcome(&self, failed: bool, elapsed: u64, ended: impl FnOnce(&Self) -> u64) -> Option<Verdict> {
        let breaker = self.breaker;
        let slow = breaker.is_slow(elapsed);
        if !failed && !slow && self.admission == Admission::Closed && breaker.success_changes_nothing(self.epoch) {
            Some(Verdict::Success)
        } else {
            breaker.record(self.admission, self.epoch, failed, slow, ended(self))
        }
    }

    /// [`BreakerPermit::settle`] of the permit in `permit`, if any, for a call that took `elapsed`
    /// nanoseconds from the time the permit was taken at; returns the breaker and its result.
    #[inline]
    pub(crate) fn settle_held(
        permit: Option<Self>,
        failed: bool,
        elapsed: u64,
    ) -> Option<(&'a CircuitBreaker, Verdict)> {
        let counted = match &permit {
            Some(held) => held
                .outcome(failed, elapsed, |held| held.started_at.saturating_add(elapsed))
                .map(|result| (held.breaker, result)),
            None => None,
        };
        // Settled: nothing is left for the drop to do.
        std::mem::forget(permit);
        counted
    }

    /// Gives the permit back without counting the call (an inner guard refused it).
    pub fn release(self) {
        self.breaker.release(self.admission, self.epoch);
        std::mem::forget(self);
    }
}

impl Drop for BreakerPermit<'_> {
    // Reached only when the permit was not settled: `settle` and `release` forget it.
    fn drop(&mut self) {
        if std::thread::panicking() {
            let now = self.breaker.clock.now_nanos();
            let slow = self.breaker.is_slow(now.saturating_sub(self.started_at));
            if let Some(result) = self.breaker.record(self.admission, self.epoch, true, slow, now) {
                self.breaker.count_shared(result);
            }
        } else {
            self.breaker.release(self.admission, self.epoch);
        }
    }
}

use crate::kind::{Family, REJECTIONS, Report};

impl crate::kind::GuardKind for CircuitBreaker {
    type Config = BreakerConfig;
    type Settings = BreakerSettings;

    const SCHEMA: &'static hardened_schema::Kind = &hardened_schema::breaker::KIND;

    fn layer(settings: &BreakerSettings, config: &mut BreakerConfig) {
        settings.apply_to(config);
    }

    fn build(name: &'static str, config: BreakerConfig) -> CircuitBreaker {
        CircuitBreaker::new(name, config, Clock::system())
    }

    fn reconfigure(&self, config: &BreakerConfig) {
        if !self.retune(config) {
            tracing::warn!(
                breaker = self.name(),
                "a new breaker window size or kind takes effect at the next restart; the other settings apply now"
            );
        }
    }

    fn settings(&self) -> BreakerSettings {
        BreakerSettings::of(&self.config())
    }

    const FAMILIES: &'static [&'static Family] = &[&STATE_FAMILY, &CALLS_FAMILY, &TRANSITIONS_FAMILY];

    fn report(&self, report: &mut Report) {
        let name = self.name;
        report.push(&STATE_FAMILY, [name], self.state().gauge_value() as f64);
        let counts = self.counts();
        for (result, count) in [
            ("success", counts.success),
            ("failure", counts.failure),
            ("slow", counts.slow),
            ("not_permitted", counts.not_permitted),
        ] {
            report.push(&CALLS_FAMILY, [name, result], count as f64);
        }
        for (from, to, count) in self.transitions.exposed() {
            report.push(&TRANSITIONS_FAMILY, [name, from.as_str(), to.as_str()], count as f64);
        }
        report.push(&REJECTIONS, ["breaker", name], counts.not_permitted as f64);
    }
}

static STATE_FAMILY: Family = Family {
    name: "hardened_circuit_breaker_state",
    help: "Circuit breaker state: 0 closed, 1 open, 2 half-open, 3 disabled.",
    counter: false,
    labels: &["name"],
};

static CALLS_FAMILY: Family = Family {
    name: "hardened_circuit_breaker_calls_total",
    help: "Calls seen by a circuit breaker, by result: success, failure, slow, not_permitted.",
    counter: true,
    labels: &["name", "result"],
};

static TRANSITIONS_FAMILY: Family = Family {
    name: "hardened_circuit_breaker_transitions_total",
    help: "Circuit breaker state transitions.",
    counter: true,
    labels: &["name", "from", "to"],
};

#[cfg(test)]
mod tests {
    use super::FastMod;

    #[test]
    fn fast_remainders_match_the_division() {
        for divisor in [1usize, 2, 3, 7, 10, 100, 1_000, 65_537, 1 << 20] {
            let fast = FastMod::new(divisor);
            for value in (0..10_000u32).chain([u32::MAX - 1, u32::MAX, 1 << 31, 4_294_967_000]) {
                assert_eq!(fast.remainder(value), value as usize % divisor, "{value} % {divisor}");
            }
        }
    }
}
