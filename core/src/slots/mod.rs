//! Slots: a limit of calls in flight, the permits that bulkheads and concurrency limits both hold for
//! the length of a call.
//!
//! A counting semaphore on atomics. A permit given back goes into a pocket of the slots that belongs to
//! the releasing thread, and that thread's next call takes it from there: threads sharing a limit do not
//! write one cache line on every call. A call whose pocket is empty takes a permit from the shared count
//! of permits out, which therefore counts from above (pocketed permits included): when it reaches the
//! limit, every pocket is emptied into it, and only then is a call refused.
//!
//! Pockets are closed while the permits out are over the limit (the limit was lowered under them): a
//! closed pocket still takes permits given back, but gives none out, so every call goes through the
//! shared count and its limit until enough calls have finished. Callers that may wait queue on a
//! `tokio::sync::Notify` that is touched only when someone is waiting.

use std::cell::Cell;
use std::fmt;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::Notify;

use crate::rejected::Rejected;

mod keyed;

pub use self::keyed::KeyedPermit;
use self::keyed::KeyedSlots;

/// The shared count of permits out, on a cache line of its own.
#[derive(Debug, Default)]
#[repr(C, align(64))]
struct Taken {
    /// Permits out: held by calls or kept in pockets.
    out: AtomicU32,
}

/// Pockets of permits given back, one per group of threads: every `POCKET_WORDS`th word, so that each
/// pocket has 128 bytes (a pair of cache lines, which x86 fetches together) to itself. A pocket holds
/// its count of permits; a closed one has the sign bit set as well ([`CLOSED`]).
#[derive(Debug)]
#[repr(align(128))]
struct Pockets([AtomicI64; POCKETS * POCKET_WORDS]);

const POCKET_WORDS: usize = 16;

/// Pockets per limit. Threads beyond that share pockets, still correctly: a pocket is changed
/// atomically.
const POCKETS: usize = 16;

/// The bit of a closed pocket: its word is negative, so the test for a permit to take fails.
const CLOSED: i64 = i64::MIN;

impl Default for Pockets {
    fn default() -> Self {
        Pockets(std::array::from_fn(|_| AtomicI64::new(0)))
    }
}

impl Pockets {
    fn each(&self) -> impl Iterator<Item = &AtomicI64> {
        self.0.iter().step_by(POCKET_WORDS)
    }
}

/// The permits a pocket's word counts, open or closed.
fn kept(word: i64) -> u64 {
    (word & i64::MAX).unsigned_abs()
}

thread_local! {
    /// The first word of the current thread's pocket, in every limit: pocket 0, shared, until the
    /// thread first finds a limit contended, then one of its own while there are enough.
    static POCKET: Cell<usize> = const { Cell::new(0) };
}

/// The current thread's pocket.
#[inline]
fn pocket() -> usize {
    // The word of the pocket, with the bounds known: one instruction.
    POCKET.with(Cell::get) & ((POCKETS - 1) * POCKET_WORDS)
}

/// Gives the current thread a pocket of its own, if it has none yet: it has just raced another thread
/// for a permit, and would otherwise keep its permits in the shared pocket.
#[cold]
fn claim_pocket() {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    POCKET.with(|cell| {
        if cell.get() == 0 {
            cell.set((1 + NEXT.fetch_add(1, Ordering::Relaxed) % (POCKETS - 1)) * POCKET_WORDS);
        }
    });
}

/// What a limit learns from each call that held one of its permits: an adaptive concurrency limit sets
/// itself from the calls' round trips.
pub(crate) trait Observe: Send + Sync + RefUnwindSafe + UnwindSafe + fmt::Debug {
    /// A call held a permit of `slots` for `rtt_nanos`, and was dropped (timed out) or not.
    fn observe(&self, slots: &Slots, rtt_nanos: u64, dropped: bool);

    /// A call waited `queued_nanos` for a permit, which the round trip it reports will include.
    fn queued(&self, queued_nanos: u64);
}

/// A limit of calls in flight: the permits of one bulkhead or one concurrency limit.
pub struct Slots {
    taken: Taken,
    name: &'static str,
    max: AtomicU32,
    /// Nanoseconds; 0 refuses at once.
    wait: AtomicU64,
    waiting: AtomicU32,
    freed: Notify,
    refused: AtomicU64,
    /// Indexed by [`pocket`].
    pockets: Pockets,
    /// What a refusal is: which kind of guard refused.
    refuse: fn(&'static str) -> Rejected,
    /// Told of each call's round trip, once set: only for an adaptive limit, so that the others pay
    /// one load and branch per call.
    observer: OnceLock<Arc<dyn Observe>>,
    /// The calls in flight of each key, made by the first keyed call: an unkeyed limit has none.
    keyed: OnceLock<KeyedSlots>,
}

impl fmt::Debug for Slots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slots")
            .field("name", &self.name)
            .field("max", &self.max())
            .field("wait", &self.wait())
            .field("in_use", &self.in_use())
            .finish_non_exhaustive()
    }
}

impl Slots {
    /// `max` permits, for the guard `name`, which a call may wait up to `wait` for (`None` refuses at
    /// once); `refuse` says what a refusal is.
    #[must_use]
    pub(crate) fn new(
        name: &'static str,
        max: u32,
        wait: Option<Duration>,
        refuse: fn(&'static str) -> Rejected,
    ) -> Slots {
        Slots {
            name,
            max: AtomicU32::new(max),
            wait: AtomicU64::new(wait.map_or(0, crate::clock::duration_nanos)),
            taken: Taken::default(),
            waiting: AtomicU32::new(0),
            freed: Notify::new(),
            refused: AtomicU64::new(0),
            pockets: Pockets::default(),
            refuse,
            observer: OnceLock::new(),
            keyed: OnceLock::new(),
        }
    }

    /// The name of the guard the slots belong to.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Calls allowed at once.
    #[must_use]
    pub fn max(&self) -> u32 {
        self.max.load(Ordering::Relaxed)
    }

    /// How long a call may wait for a permit; `None` refuses at once.
    #[must_use]
    pub fn wait(&self) -> Option<Duration> {
        let wait = self.wait.load(Ordering::Relaxed);
        (wait > 0).then(|| Duration::from_nanos(wait))
    }

    /// Sets the limit and the wait. Permits already out stay out: lowering `max` below the calls in
    /// flight refuses (or queues) new calls until enough of them finish.
    pub(crate) fn retune(&self, max: u32, wait: Option<Duration>) {
        let before = self.max.swap(max, Ordering::SeqCst);
        // The kind of guard, as its refusals name it.
        crate::events::limit_changed((self.refuse)(self.name).guard(), self.name, before, max);
        self.wait.store(wait.map_or(0, crate::clock::duration_nanos), Ordering::Relaxed);
        if self.taken.out.load(Ordering::SeqCst) > max {
            self.close_pockets();
        }
        self.freed.notify_waiters();
    }

    /// Sets the limit, keeping the wait: an adaptive limit's new estimate.
    pub(crate) fn set_max(&self, max: u32) {
        self.retune(max, self.wait());
    }

    /// Tells `observer` of every call's round trip from now on; a limit has one observer, the first set.
    pub(crate) fn watch(&self, observer: Arc<dyn Observe>) {
        // A second observer of the same limit would be its own estimate again: the first one stays.
        let _ = self.observer.set(observer);
    }

    /// Whether the limit learns from its calls' round trips.
    #[inline]
    pub(crate) fn observed(&self) -> bool {
        self.observer.get().is_some()
    }

    /// Tells the observer, if any, of a call that held a permit for `rtt_nanos` (dropped or not), without
    /// giving the permit back.
    #[inline]
    pub(crate) fn observe(&self, rtt_nanos: u64, dropped: bool) {
        if let Some(observer) = self.observer.get() {
            observer.observe(self, rtt_nanos, dropped);
        }
    }

    /// Tells the observer, if any, that a call waited `queued_nanos` for its permit, time that the round
    /// trip it reports at its end includes.
    pub(crate) fn queued(&self, queued_nanos: u64) {
        if let Some(observer) = self.observer.get() {
            observer.queued(queued_nanos);
        }
    }

    /// Gives back a permit taken earlier and forgotten, held by a call for `rtt_nanos`, and tells the
    /// observer, if any.
    #[inline]
    pub(crate) fn give_back_after(&self, rtt_nanos: u64) {
        self.release();
        self.observe(rtt_nanos, false);
    }

    /// Permits free now.
    #[must_use]
    pub fn available(&self) -> u32 {
        self.max.load(Ordering::Relaxed).saturating_sub(self.in_use())
    }

    /// Permits held by calls now.
    #[must_use]
    pub fn in_use(&self) -> u32 {
        let out = self.taken.out.load(Ordering::SeqCst);
        let kept: u64 = self.pockets.each().map(|pocket| kept(pocket.load(Ordering::SeqCst))).sum();
        out.saturating_sub(u32::try_from(kept).unwrap_or(u32::MAX))
    }

    /// Calls waiting for a permit now.
    #[must_use]
    pub fn waiting(&self) -> u32 {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Calls refused so far.
    #[must_use]
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Takes a permit if one is free, counting a refusal otherwise.
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit<'_>, Rejected> {
        self.take().ok_or_else(|| self.refusal())
    }

    /// Takes a permit if one is free, without waiting: from the thread's pocket if it keeps one.
    #[inline]
    pub(crate) fn take(&self) -> Option<Permit<'_>> {
        let pocket = &self.pockets.0[pocket()];
        // A thread that gives its permit back before its next call keeps one: tried first, without a
        // load of the pocket before the compare-and-swap.
        match pocket.compare_exchange(1, 0, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => Some(Permit { slots: self }),
            Err(kept) => self.take_slowly(pocket, kept),
        }
    }

    /// Takes a permit from a pocket that keeps `kept` (other than one), or else from the shared count.
    fn take_slowly(&self, pocket: &AtomicI64, mut kept: i64) -> Option<Permit<'_>> {
        while kept > 0 {
            match pocket.compare_exchange_weak(kept, kept - 1, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return Some(Permit { slots: self }),
                Err(actual) => {
                    claim_pocket();
                    kept = actual;
                }
            }
        }
        self.take_shared()
    }

    /// Takes a permit from the shared count, emptying the pockets into it first if it is at the limit.
    fn take_shared(&self) -> Option<Permit<'_>> {
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
                Ok(_) => return Some(Permit { slots: self }),
                Err(actual) => {
                    claim_pocket();
                    out = actual;
                }
            }
        }
    }

    /// Empties every pocket into the shared count, and closes the pockets or opens them again as the
    /// permits out are over the limit or not; returns the permits out.
    #[cold]
    fn settle(&self) -> u32 {
        let (mut freed, mut any_closed) = (0, false);
        for pocket in self.pockets.each() {
            let word = pocket.load(Ordering::SeqCst);
            any_closed |= word < 0;
            if kept(word) > 0 {
                freed += kept(pocket.fetch_and(CLOSED, Ordering::SeqCst));
            }
        }
        let out = if freed == 0 {
            self.taken.out.load(Ordering::SeqCst)
        } else {
            // Each of these permits was counted out when taken, and is taken off once: by the settlement
            // that emptied its pocket. Fewer than `u32::MAX` are out.
            let freed = u32::try_from(freed).unwrap_or(u32::MAX);
            let out = self.taken.out.fetch_sub(freed, Ordering::SeqCst) - freed;
            // A waiter may have found `out` not yet lowered, and gone back to waiting. The caller takes
            // one of the permits freed; a waiter is woken for each other one (not every waiter for each:
            // they would all race for one permit).
            for _ in 1..freed.min(self.waiting.load(Ordering::SeqCst).saturating_add(1)) {
                self.freed.notify_one();
            }
            out
        };
        let over = |out: u32| out > self.max.load(Ordering::SeqCst);
        if over(out) {
            // Also when a retune lowered the limit while this call took from the shared count.
            self.close_pockets();
        } else if any_closed {
            for pocket in self.pockets.each() {
                if pocket.load(Ordering::SeqCst) < 0 {
                    pocket.fetch_and(i64::MAX, Ordering::SeqCst);
                }
            }
            // A retune may have closed them in between, which the opening just undid.
            if over(self.taken.out.load(Ordering::SeqCst)) {
                self.close_pockets();
            }
        }
        out
    }

    /// Stops the pockets giving out permits, until a settlement finds the permits out within the limit.
    #[cold]
    fn close_pockets(&self) {
        for pocket in self.pockets.each() {
            if pocket.load(Ordering::SeqCst) >= 0 {
                pocket.fetch_or(CLOSED, Ordering::SeqCst);
            }
        }
    }

    /// Whether a call may wait for a permit.
    #[inline]
    pub(crate) fn waits(&self) -> bool {
        self.wait.load(Ordering::Relaxed) > 0
    }

    /// Takes a permit, waiting up to the configured `wait` for one.
    pub async fn acquire(&self) -> Result<Permit<'_>, Rejected> {
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
        let queued = Queued::join(&self.waiting);
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
        drop(queued);
        waited.map_err(|_| self.refusal())
    }

    /// Counts a refusal, and says so.
    pub(crate) fn refusal(&self) -> Rejected {
        self.refused.fetch_add(1, Ordering::Relaxed);
        (self.refuse)(self.name)
    }

    /// A permit taken earlier and forgotten, to hold or to give back by dropping it: for a call holding
    /// the permits of several slots as one value.
    #[inline]
    pub(crate) fn reclaim(&self) -> Permit<'_> {
        Permit { slots: self }
    }

    #[inline]
    fn release(&self) {
        self.pockets.0[pocket()].fetch_add(1, Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.freed.notify_one();
        }
    }
}

/// A caller counted among the waiting until it leaves the queue: with a permit, at the end of its wait,
/// or cancelled (its caller's timeout, a dropped request), which would otherwise leave it counted for
/// ever, and every release waking nobody.
struct Queued<'a>(&'a AtomicU32);

impl<'a> Queued<'a> {
    fn join(waiting: &'a AtomicU32) -> Queued<'a> {
        waiting.fetch_add(1, Ordering::SeqCst);
        Queued(waiting)
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A permit of [`Slots`], given back when dropped: on completion, error, cancellation or panic alike.
#[derive(Debug)]
#[must_use = "the permit is released as soon as it is dropped"]
pub struct Permit<'a> {
    slots: &'a Slots,
}

impl Permit<'_> {
    /// The slots the permit is of.
    pub(crate) fn slots(&self) -> &Slots {
        self.slots
    }

    /// Gives the permit back after a call that held it `rtt_nanos`, telling the slots' observer, if any.
    #[inline]
    pub(crate) fn give_back_after(self, rtt_nanos: u64) {
        let slots = self.slots;
        std::mem::forget(self);
        slots.give_back_after(rtt_nanos);
    }
}

impl Drop for Permit<'_> {
    #[inline]
    fn drop(&mut self) {
        self.slots.release();
    }
}
