//! Allocations counted: mimalloc, the allocator `agent-server` runs with, behind a wrapper that counts
//! calls and bytes while [`Counting::start`] has switched it on, over every thread and for the calling
//! thread alone.
#![allow(unsafe_code, reason = "a global allocator is an `unsafe` trait, implemented by forwarding to mimalloc")]

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Allocation calls and bytes asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Allocations {
    pub(crate) calls: u64,
    pub(crate) bytes: u64,
}

/// Allocation calls and bytes per unit of some work.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub(crate) struct PerUnit {
    pub(crate) calls: f64,
    pub(crate) bytes: f64,
}

/// What `run`, which does `units` units of work on this thread, allocates per unit.
pub(crate) fn per_unit(units: usize, run: impl FnOnce()) -> PerUnit {
    let before = Counting::this_thread();
    Counting::start();
    run();
    Counting::stop();
    let Allocations { calls, bytes } = Counting::this_thread() - before;
    PerUnit { calls: calls as f64 / units as f64, bytes: bytes as f64 / units as f64 }
}

impl std::ops::Sub for Allocations {
    type Output = Allocations;

    fn sub(self, earlier: Allocations) -> Allocations {
        Allocations { calls: self.calls - earlier.calls, bytes: self.bytes - earlier.bytes }
    }
}

/// mimalloc, counting: an allocation, a zeroed allocation and a reallocation are one call each, of the
/// size asked for; frees are not counted.
#[derive(Debug)]
pub(crate) struct Counting;

/// Whether calls are counted: off but while a profile runs, so that the timed benchmarks pay one relaxed
/// load per allocation and share no written cache line between threads.
static ON: AtomicBool = AtomicBool::new(false);
static CALLS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's calls and bytes: constant-initialised and without a destructor, so reading it
    /// inside the allocator never allocates.
    static THREAD: Cell<Allocations> = const { Cell::new(Allocations { calls: 0, bytes: 0 }) };
}

impl Counting {
    /// Counts from now on.
    pub(crate) fn start() {
        ON.store(true, Ordering::SeqCst);
    }

    /// Stops counting.
    pub(crate) fn stop() {
        ON.store(false, Ordering::SeqCst);
    }

    /// What every thread allocated while counting, since the process started.
    pub(crate) fn all_threads() -> Allocations {
        Allocations { calls: CALLS.load(Ordering::SeqCst), bytes: BYTES.load(Ordering::SeqCst) }
    }

    /// What this thread allocated while counting.
    pub(crate) fn this_thread() -> Allocations {
        THREAD.try_with(Cell::get).unwrap_or_default()
    }
}

fn count(size: usize) {
    if ON.load(Ordering::Relaxed) {
        let size = size as u64;
        CALLS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(size, Ordering::Relaxed);
        let _ = THREAD.try_with(|thread| {
            let Allocations { calls, bytes } = thread.get();
            thread.set(Allocations { calls: calls + 1, bytes: bytes + size });
        });
    }
}

// SAFETY: every call is forwarded to mimalloc with the caller's arguments; counting touches atomics and a
// constant thread-local only, and allocates nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: the caller's contract, passed on.
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: the caller's contract, passed on.
        unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { mimalloc::MiMalloc.dealloc(pointer, layout) }
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: the caller's contract, passed on.
        unsafe { mimalloc::MiMalloc.realloc(pointer, layout, new_size) }
    }
}
