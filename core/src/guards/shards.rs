//! Per-thread counter shards: the storage behind the call metrics.
//!
//! Every call site owns a fixed range of cells, and every thread that makes calls owns a shard with the
//! cells of all sites. A thread only ever writes its own shard, so recording is a plain load and store
//! (no locked instruction, no cache line shared between cores); a scrape sums all shards. A shard outlives
//! its thread: it goes back to a pool and the next new thread continues counting in it, so totals never
//! go backwards.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use crate::breaker::{Verdict, VerdictCounts};
use crate::guards::site::{DETACHED, Site, sites};
use crate::outcome::Outcome;

/// Cell holding the number of calls started.
const STARTED: usize = 0;
/// First of the cells counting finished calls per outcome.
const OUTCOMES: usize = 1;
/// Cell holding the sum of call durations in nanoseconds.
const SUM_NANOS: usize = OUTCOMES + Outcome::COUNT;
/// Cell counting retries.
const RETRIES: usize = SUM_NANOS + 1;
/// Cell counting attempts cut by the timeout (a call may retry after one).
const TIMEOUTS: usize = RETRIES + 1;
/// First of the cells counting the outcomes the site's circuit breaker saw (success, failure, slow), for
/// `hardened_circuit_breaker_calls_total`: a breaker shared by several threads counts without a locked
/// instruction.
const BREAKER: usize = TIMEOUTS + 1;
/// Outcomes a breaker counts per call: success, failure and slow.
pub(crate) const BREAKER_RESULTS: usize = Verdict::COUNT;
/// First of the histogram cells: one per bucket bound, then one for `+Inf`, or none for a site without
/// a histogram. Counts are not cumulative.
const BUCKETS: usize = BREAKER + BREAKER_RESULTS;

type Shard = &'static [AtomicU64];

fn cells_of(site: &Site) -> usize {
    BUCKETS + site.histogram_cells().len()
}

/// Assigns every site its offset, once, after fixing its histogram; returns the number of cells in a
/// shard.
fn shard_len() -> usize {
    static LEN: OnceLock<usize> = OnceLock::new();
    *LEN.get_or_init(|| {
        // From the first call on, the shutdown drain waits for calls in flight.
        crate::shutdown::wait_for_in_flight(in_flight);
        super::histograms::fix_all();
        let mut next = 0usize;
        for site in sites() {
            if site.metrics_enabled() {
                let slot = u32::try_from(next).ok().filter(|slot| *slot < DETACHED).unwrap_or(DETACHED);
                site.assign_slot(slot);
                next += cells_of(site);
            }
        }
        next
    })
}

/// The slot of a site, resolving the layout on first use. `DETACHED` for sites not in the registry.
#[inline]
pub(crate) fn slot_of(site: &Site) -> u32 {
    let slot = site.slot();
    if slot != crate::guards::site::UNRESOLVED {
        return slot;
    }
    resolve(site)
}

#[cold]
fn resolve(site: &Site) -> u32 {
    shard_len();
    let slot = site.slot();
    if slot == crate::guards::site::UNRESOLVED {
        // A site outside the linker section (a platform without section support) records nothing
        // rather than corrupting another site's cells.
        site.assign_slot(DETACHED);
        return DETACHED;
    }
    slot
}

#[derive(Default)]
struct Pool {
    all: Vec<Shard>,
    free: Vec<Shard>,
}

fn pool() -> MutexGuard<'static, Pool> {
    static POOL: Mutex<Pool> = Mutex::new(Pool { all: Vec::new(), free: Vec::new() });
    POOL.lock().unwrap_or_else(PoisonError::into_inner)
}

thread_local! {
    // Constant-initialised and without a destructor, so reading it is a plain thread-local load.
    static SHARD: Cell<Shard> = const { Cell::new(&[]) };
    // Returns the shard to the pool when the thread exits.
    static RETURN_ON_EXIT: ShardReturn = const { ShardReturn(Cell::new(&[])) };
}

struct ShardReturn(Cell<Shard>);

impl Drop for ShardReturn {
    fn drop(&mut self) {
        let shard = self.0.get();
        if !shard.is_empty() {
            // Detach first, so a later destructor making a call takes a fresh shard instead of sharing this one.
            SHARD.with(|current| current.set(&[]));
            pool().free.push(shard);
        }
    }
}

/// The current thread's shard, attaching one first if it has none.
fn shard() -> Shard {
    let shard = SHARD.with(Cell::get);
    if shard.is_empty() { attach() } else { shard }
}

/// The current thread's shard as it is: empty before the thread's first call. Its users index it with a
/// bounds check, which an empty shard fails too, and only then attach one: no check of their own.
#[inline]
fn attached_shard() -> Shard {
    SHARD.with(Cell::get)
}

/// Adds `amount` to the cell at `index` of the current thread's shard.
#[inline]
fn add_at(index: usize, amount: u64) {
    match attached_shard().get(index) {
        Some(cell) => add(cell, amount),
        None => add_attaching(index, amount),
    }
}

#[cold]
fn add_attaching(index: usize, amount: u64) {
    if let Some(cell) = shard().get(index) {
        add(cell, amount);
    }
}

#[cold]
fn attach() -> Shard {
    let len = shard_len();
    let shard = {
        let mut pool = pool();
        pool.free.pop().unwrap_or_else(|| {
            let shard: Shard = Box::leak((0..len.max(1)).map(|_| AtomicU64::new(0)).collect());
            pool.all.push(shard);
            shard
        })
    };
    SHARD.with(|current| current.set(shard));
    // During thread teardown the returner may already be gone; the shard then simply stays with this thread.
    let _ = RETURN_ON_EXIT.try_with(|returner| returner.0.set(shard));
    shard
}

/// Adds to a cell that only the current thread writes.
#[inline]
fn add(cell: &AtomicU64, amount: u64) {
    cell.store(cell.load(Ordering::Relaxed).wrapping_add(amount), Ordering::Relaxed);
}

/// Counts a started call.
#[inline]
pub(crate) fn record_start(slot: u32) {
    add_at(slot as usize + STARTED, 1);
}

/// Counts a finished call with its outcome and duration, and the result (below [`BREAKER_RESULTS`]) its
/// circuit breaker saw, if any.
#[inline(always)]
#[allow(clippy::inline_always, reason = "measured: left to the optimiser, a guarded call kept it out of line")]
pub(crate) fn record_finish(site: &Site, slot: u32, outcome: Outcome, nanos: u64, breaker: Option<Verdict>) {
    // The cells before the histogram as an array: one length check instead of one per index, which only
    // a thread without a shard yet fails, the layout being fixed before the first shard is made.
    match site_cells(attached_shard(), slot) {
        Some((cells, histogram)) => count_finish(cells, histogram, site, outcome, nanos, breaker),
        None => record_finish_attaching(site, slot, outcome, nanos, breaker),
    }
}

#[cold]
fn record_finish_attaching(site: &Site, slot: u32, outcome: Outcome, nanos: u64, breaker: Option<Verdict>) {
    if let Some((cells, histogram)) = site_cells(shard(), slot) {
        count_finish(cells, histogram, site, outcome, nanos, breaker);
    }
}

/// The cells of the site at `slot` in `shard`: those before the histogram, and the histogram's on.
#[inline(always)]
#[allow(clippy::inline_always, reason = "on every call's path, as `record_finish`")]
fn site_cells(shard: Shard, slot: u32) -> Option<(&'static [AtomicU64; BUCKETS], &'static [AtomicU64])> {
    shard.get(slot as usize..).and_then(<[AtomicU64]>::split_first_chunk::<BUCKETS>)
}

/// Counts a finished call in its site's cells of one shard.
#[inline(always)]
#[allow(clippy::inline_always, reason = "on every call's path, as `record_finish`")]
fn count_finish(
    cells: &[AtomicU64; BUCKETS],
    histogram: &[AtomicU64],
    site: &Site,
    outcome: Outcome,
    nanos: u64,
    breaker: Option<Verdict>,
) {
    add(&cells[OUTCOMES + outcome.index()], 1);
    if let Some(result) = breaker {
        add(&cells[BREAKER + result.index()], 1);
    }
    add(&cells[SUM_NANOS], nanos);
    // A site with a histogram finds its cell at the latest at the `+Inf` bound, `u64::MAX`; one without
    // has neither bounds nor cells. The layout is fixed before a call is counted.
    if let Some(bounds) = site.histogram_bounds()
        && let Some(bucket) = bounds.iter().position(|bound| nanos <= *bound)
    {
        add(&histogram[bucket], 1);
    }
}

/// Counts a retry of a call of `site`.
#[inline]
pub(crate) fn record_retry(site: &Site) {
    let slot = slot_of(site);
    if slot < DETACHED {
        add_at(slot as usize + RETRIES, 1);
    }
}

/// Counts an attempt of a call of `site` cut by its timeout.
#[inline]
pub(crate) fn record_timeout(site: &Site) {
    let slot = slot_of(site);
    if slot < DETACHED {
        add_at(slot as usize + TIMEOUTS, 1);
    }
}

impl VerdictCounts for Site {
    fn verdict_totals(&self) -> [u64; Verdict::COUNT] {
        breaker_totals(self)
    }
}

/// The outcomes the breaker of `site` counted in the shards, summed over every thread.
pub(crate) fn breaker_totals(site: &Site) -> [u64; BREAKER_RESULTS] {
    let mut totals = [0; BREAKER_RESULTS];
    let slot = site.slot();
    if slot >= DETACHED {
        return totals;
    }
    for shard in &pool().all {
        for (index, total) in totals.iter_mut().enumerate() {
            *total = total.wrapping_add(shard[slot as usize + BREAKER + index].load(Ordering::Relaxed));
        }
    }
    totals
}

/// Totals of one site over all threads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SiteTotals {
    pub(crate) started: u64,
    pub(crate) outcomes: [u64; Outcome::COUNT],
    pub(crate) sum_nanos: u64,
    pub(crate) retries: u64,
    pub(crate) timeouts: u64,
    /// Per bucket, not cumulative; the last is `+Inf`. Empty for a site without a histogram.
    pub(crate) buckets: Vec<u64>,
}

impl SiteTotals {
    #[must_use]
    pub(crate) fn finished(&self) -> u64 {
        self.outcomes.iter().fold(0u64, |sum, count| sum.wrapping_add(*count))
    }

    /// Calls started and not yet finished; a call may start on one thread and finish on another, so
    /// only the sum over all shards is meaningful.
    #[must_use]
    pub(crate) fn in_flight(&self) -> u64 {
        self.started.wrapping_sub(self.finished())
    }

    /// Adds another site's counts of calls, but not its durations.
    pub(crate) fn merge_counts(&mut self, other: &SiteTotals) {
        self.started = self.started.wrapping_add(other.started);
        for (mine, theirs) in self.outcomes.iter_mut().zip(other.outcomes) {
            *mine = mine.wrapping_add(theirs);
        }
        self.retries = self.retries.wrapping_add(other.retries);
        self.timeouts = self.timeouts.wrapping_add(other.timeouts);
    }

    /// Adds another site's counts and durations; both sites have the same bucket bounds.
    pub(crate) fn merge(&mut self, other: &SiteTotals) {
        self.merge_counts(other);
        self.sum_nanos = self.sum_nanos.wrapping_add(other.sum_nanos);
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            *mine = mine.wrapping_add(*theirs);
        }
    }
}

impl SiteTotals {
    /// Nothing counted yet, with a cell per bucket of `site`'s histogram.
    fn zero(site: &Site) -> SiteTotals {
        SiteTotals { buckets: vec![0; site.histogram_cells().len()], ..SiteTotals::default() }
    }

    /// Adds the cells of one site in one shard, those before the histogram's and the histogram's.
    fn add(&mut self, cells: &[AtomicU64]) {
        let read = |index: usize| cells[index].load(Ordering::Relaxed);
        self.started = self.started.wrapping_add(read(STARTED));
        for (index, count) in self.outcomes.iter_mut().enumerate() {
            *count = count.wrapping_add(read(OUTCOMES + index));
        }
        self.sum_nanos = self.sum_nanos.wrapping_add(read(SUM_NANOS));
        self.retries = self.retries.wrapping_add(read(RETRIES));
        self.timeouts = self.timeouts.wrapping_add(read(TIMEOUTS));
        for (index, count) in self.buckets.iter_mut().enumerate() {
            *count = count.wrapping_add(read(BUCKETS + index));
        }
    }
}

/// Sums a site's cells over every shard.
pub(crate) fn totals(site: &Site) -> SiteTotals {
    let slot = slot_of(site);
    let mut totals = SiteTotals::zero(site);
    if slot >= DETACHED {
        return totals;
    }
    let base = slot as usize;
    for shard in &pool().all {
        totals.add(&shard[base..base + cells_of(site)]);
    }
    totals
}

/// The totals of every site, in the order of [`sites()`]: what one scrape reads. The pool is locked
/// once, and each shard read once from start to end rather than once per site: with 1,000 sites and 64
/// threads the shards are 20 MB, and reading them this way took the summing from 19% to 14% of a
/// render's time (`benches/metrics_scale.rs`, under `perf`).
pub(crate) fn all_totals() -> Vec<SiteTotals> {
    shard_len();
    let all = sites();
    let mut totals: Vec<SiteTotals> = all.iter().map(SiteTotals::zero).collect();
    // Slots are assigned in the order of the sites, so this is the order of their cells too.
    let placed: Vec<(usize, usize, usize)> = all
        .iter()
        .enumerate()
        .filter(|(_, site)| site.slot() < DETACHED)
        .map(|(index, site)| (index, site.slot() as usize, cells_of(site)))
        .collect();
    for shard in &pool().all {
        for &(index, base, len) in &placed {
            totals[index].add(&shard[base..base + len]);
        }
    }
    totals
}

/// Calls in flight over every site; what a graceful shutdown waits for.
#[must_use]
pub fn in_flight() -> u64 {
    all_totals().iter().map(SiteTotals::in_flight).fold(0, u64::wrapping_add)
}
