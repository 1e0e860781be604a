//! Bulkhead: a limit on concurrent calls, so one slow dependency cannot take every task and connection.
//!
//! A counting semaphore on atomics. Taking a permit is a compare-and-swap of the permits out; giving it
//! back adds to a count of permits released that belongs to the releasing thread, so that two threads
//! sharing a bulkhead do not fight over one cache line twice per call. The permits out are therefore
//! counted from above: when they reach the limit, the permits released since are summed and taken off,
//! and only then is a call refused. Callers that may wait queue on a `tokio::sync::Notify` that is
//! touched only when someone is waiting.

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use crate::rejected::Rejected;

/// Settings of one bulkhead.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BulkheadConfig {
    /// Calls allowed at once.
    pub max: u32,
    /// How long a call may wait for a permit; `None` refuses at once.
    pub wait: Option<Duration>,
}

impl BulkheadConfig {
    /// At most `max` calls at once, refusing the next at once.
    #[must_use]
    pub fn new(max: u32) -> BulkheadConfig {
        BulkheadConfig { max, wait: None }
    }
}

impl Default for BulkheadConfig {
    fn default() -> Self {
        BulkheadConfig::new(10)
    }
}

/// What taking a permit writes, on a cache line of its own.
#[derive(Debug, Default)]
#[repr(C, align(64))]
struct Taken {
    /// Permits out, counting those released since the last settlement: never fewer than are out.
    out: AtomicU32,
    /// Permits released and taken off `out` so far.
    settled: AtomicU64,
}

/// Permits released, one cell per group of threads: every `CELL_WORDS`th word, so that each cell has
/// 128 bytes (a pair of cache lines, which x86 fetches together) to itself.
#[derive(Debug)]
#[repr(align(128))]
struct Released([AtomicU64; RELEASED_CELLS * CELL_WORDS]);

const CELL_WORDS: usize = 16;

impl Default for Released {
    fn default() -> Self {
        Released(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

/// Cells of released permits per bulkhead. Threads beyond that share cells, still correctly: a cell is
/// added to atomically.
const RELEASED_CELLS: usize = 16;

thread_local! {
    /// The first word of the current thread's cell of released permits, in every bulkhead: cell 0,
    /// shared, until the thread first finds a bulkhead contended, then one of its own while there are
    /// enough.
    static RELEASED_CELL: Cell<usize> = const { Cell::new(0) };
}

/// The current thread's cell of released permits.
#[inline]
fn released_cell() -> usize {
    // The word of the cell, with the bounds known: one instruction.
    RELEASED_CELL.with(Cell::get) & ((RELEASED_CELLS - 1) * CELL_WORDS)
}

/// Gives the current thread a cell of released permits of its own, if it has none yet: it has just
/// raced another thread for a permit, and would otherwise count its releases in the shared cell.
#[cold]
fn claim_released_cell() {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    RELEASED_CELL.with(|cell| {
        if cell.get() == 0 {
            cell.set((1 + NEXT.fetch_add(1, Ordering::Relaxed) % (RELEASED_CELLS - 1)) * CELL_WORDS);
        }
    });
}

/// A bulkhead; shared by name between every function that names it.
pub struct Bulkhead {
    taken: Taken,
    name: &'static str,
    max: AtomicU32,
    /// Nanoseconds; 0 refuses at once.
    wait: AtomicU64,
    waiting: AtomicU32,
    freed: Notify,
    refused: AtomicU64,
    /// Indexed by [`released_cell`].
    released: Released,
}

impl fmt::Debug for Bulkhead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bulkhead")
            .field("name", &self.name)
            .field("config", &self.config())
            .field("in_use", &self.in_use())
            .finish_non_exhaustive()
    }
}

impl Bulkhead {
    /// A bulkhead; named bulkheads used by `#[hardened]` are made by the registry.
    #[must_use]
    #[allow(clippy::needless_pass_by_value, reason = "constructors take their settings by value, like builders")]
    pub fn new(name: &'static str, config: BulkheadConfig) -> Bulkhead {
        Bulkhead {
            name,
            max: AtomicU32::new(config.max),
            wait: AtomicU64::new(config.wait.map_or(0, crate::clock::duration_nanos)),
            taken: Taken::default(),
            waiting: AtomicU32::new(0),
            freed: Notify::new(),
            refused: AtomicU64::new(0),
            released: Released::default(),
        }
    }

    /// The bulkhead's name.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The settings in force.
    #[must_use]
    pub fn config(&self) -> BulkheadConfig {
        let wait = self.wait.load(Ordering::Relaxed);
        BulkheadConfig { max: self.max.load(Ordering::Relaxed), wait: (wait > 0).then(|| Duration::from_nanos(wait)) }
    }

    /// Applies new settings to the running bulkhead. Permits already out stay out: lowering `max` below
    /// the calls in flight refuses new calls until enough of them finish.
    pub fn retune(&self, config: &BulkheadConfig) {
        self.max.store(config.max, Ordering::Relaxed);
        self.wait.store(config.wait.map_or(0, crate::clock::duration_nanos), Ordering::Relaxed);
        self.freed.notify_waiters();
    }

    /// Permits free now.
    #[must_use]
    pub fn available(&self) -> u32 {
        self.max.load(Ordering::Relaxed).saturating_sub(self.in_use())
    }

    /// Permits out now.
    fn in_use(&self) -> u32 {
        // Released last: a permit taken and released in between is then not counted as out.
        let settled = self.taken.settled.load(Ordering::SeqCst);
        let out = self.taken.out.load(Ordering::SeqCst);
        let unsettled = self.released_total().saturating_sub(settled);
        out.saturating_sub(u32::try_from(unsettled).unwrap_or(u32::MAX))
    }

    /// Permits released so far, by every thread.
    fn released_total(&self) -> u64 {
        self.released.0.iter().step_by(CELL_WORDS).map(|cell| cell.load(Ordering::SeqCst)).sum()
    }

    /// Calls refused so far.
    #[must_use]
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Takes a permit if one is free.
    #[inline]
    pub fn try_acquire(&self) -> Result<BulkheadPermit<'_>, Rejected> {
        self.take().ok_or_else(|| self.refusal())
    }

    /// Takes a permit if one is free, without waiting.
    #[inline]
    pub(crate) fn take(&self) -> Option<BulkheadPermit<'_>> {
        let max = self.max.load(Ordering::Relaxed);
        let mut out = self.taken.out.load(Ordering::Acquire);
        loop {
            if out >= max {
                out = self.settle();
                if out >= max {
                    return None;
                }
            }
            match self.taken.out.compare_exchange_weak(out, out + 1, Ordering::SeqCst, Ordering::Acquire) {
                Ok(_) => return Some(BulkheadPermit { bulkhead: self }),
                Err(actual) => {
                    claim_released_cell();
                    out = actual;
                }
            }
        }
    }

    /// Takes the permits released since the last settlement off the permits out; returns those out.
    #[cold]
    fn settle(&self) -> u32 {
        let released = self.released_total();
        let mut settled = self.taken.settled.load(Ordering::SeqCst);
        while released > settled {
            match self.taken.settled.compare_exchange_weak(settled, released, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => {
                    // Each of these permits was counted out when taken, and is taken off once: by the
                    // settlement that moved `settled` past it. Fewer than `u32::MAX` are out.
                    let freed = u32::try_from(released - settled).unwrap_or(u32::MAX);
                    let out = self.taken.out.fetch_sub(freed, Ordering::SeqCst) - freed;
                    // A waiter may have found `settled` moved and `out` not yet lowered, and gone back to
                    // waiting. The caller takes one of the permits freed; a waiter is woken for each other
                    // one (not every waiter for each: they would all race for one permit).
                    for _ in 1..freed.min(self.waiting.load(Ordering::SeqCst).saturating_add(1)) {
                        self.freed.notify_one();
                    }
                    return out;
                }
                Err(actual) => settled = actual,
            }
        }
        self.taken.out.load(Ordering::SeqCst)
    }

    /// Whether a call may wait for a permit.
    #[inline]
    pub(crate) fn waits(&self) -> bool {
        self.wait.load(Ordering::Relaxed) > 0
    }

    /// Takes a permit, waiting up to the configured `wait` for one.
    pub async fn acquire(&self) -> Result<BulkheadPermit<'_>, Rejected> {
        if let Some(permit) = self.take() {
            return Ok(permit);
        }
        let wait = self.wait.load(Ordering::Relaxed);
        if wait == 0 {
            return Err(self.refusal());
        }
        let wait = Duration::from_nanos(wait);
        // Sequentially consistent with the release's count and its look at `waiting`: either the release
        // sees this waiter, or the retry below sees the release.
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let waited = tokio::time::timeout(wait, async {
            loop {
                let freed = self.freed.notified();
                tokio::pin!(freed);
                // Registered before the retry, so a release between the two still wakes this waiter.
                freed.as_mut().enable();
                if let Some(permit) = self.take() {
                    return permit;
                }
                freed.await;
            }
        })
        .await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        waited.map_err(|_| self.refusal())
    }

    /// Counts a refusal, and says so.
    pub(crate) fn refusal(&self) -> Rejected {
        self.refused.fetch_add(1, Ordering::Relaxed);
        Rejected::BulkheadFull { name: self.name }
    }

    #[inline]
    fn release(&self) {
        self.released.0[released_cell()].fetch_add(1, Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.freed.notify_one();
        }
    }
}

/// A bulkhead permit, given back when dropped: on completion, error, cancellation or panic alike.
#[derive(Debug)]
#[must_use = "the permit is released as soon as it is dropped"]
pub struct BulkheadPermit<'a> {
    bulkhead: &'a Bulkhead,
}

impl Drop for BulkheadPermit<'_> {
    #[inline]
    fn drop(&mut self) {
        self.bulkhead.release();
    }
}
