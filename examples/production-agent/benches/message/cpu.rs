//! CPU time, from the kernel's clocks: the whole process's (every thread, the audit writer's included) and
//! the calling thread's.
#![allow(unsafe_code, reason = "`clock_gettime` is a C function")]

use std::time::Duration;

/// CPU time of every thread of the process so far.
pub(crate) fn process() -> Duration {
    clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// CPU time of the calling thread so far.
pub(crate) fn thread() -> Duration {
    clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

fn clock(id: libc::clockid_t) -> Duration {
    let mut time = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `time` is a valid, writable `timespec`; the clock ids are the kernel's.
    let status = unsafe { libc::clock_gettime(id, &raw mut time) };
    assert_eq!(status, 0, "the CPU clocks are readable");
    let seconds = u64::try_from(time.tv_sec).expect("a CPU time is positive");
    let nanos = u32::try_from(time.tv_nsec).expect("under a second of nanoseconds");
    Duration::new(seconds, nanos)
}
