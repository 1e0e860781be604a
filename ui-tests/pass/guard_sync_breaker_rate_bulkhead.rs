//! A synchronous function with a breaker, a rate limiter and a bulkhead: each refuses at once, and a
//! refusal by the limiter or the bulkhead says nothing about the dependency, so the breaker ignores it.
use std::sync::Barrier;
use std::thread;

use hardened::{BreakerState, Rejected, hardened};

#[derive(Debug, PartialEq, thiserror::Error)]
enum DiskError {
    #[error(transparent)]
    Refused(#[from] Rejected),
    #[error("disk full")]
    Full,
}

/// Two barriers: the call has started, and it may finish.
type Hold<'a> = Option<(&'a Barrier, &'a Barrier)>;

#[hardened(breaker(name = "disk", consecutive_failures = 2), rate(per_second = 1, burst = 3), bulkhead = 1)]
fn write(hold: Hold<'_>, fail: bool) -> Result<u32, DiskError> {
    if let Some((started, finish)) = hold {
        started.wait();
        finish.wait();
    }
    if fail { Err(DiskError::Full) } else { Ok(0) }
}

fn main() {
    let (started, finish) = (Barrier::new(2), Barrier::new(2));
    thread::scope(|scope| {
        let holder = scope.spawn(|| write(Some((&started, &finish)), false));
        started.wait();
        match write(None, false) {
            Err(DiskError::Refused(refused @ Rejected::BulkheadFull { .. })) => {
                assert_eq!(refused.guard(), "bulkhead");
            }
            other => panic!("expected a full bulkhead, found {other:?}"),
        }
        finish.wait();
        assert_eq!(holder.join().expect("no panic"), Ok(0));
    });
    assert_eq!(write(None, true), Err(DiskError::Full));
    // Three calls took the burst of 3, the refused one included.
    match write(None, false) {
        Err(DiskError::Refused(refused @ Rejected::RateLimited { .. })) => {
            assert_eq!(refused.guard(), "rate_limiter");
            assert!(refused.retry_after().is_some());
        }
        other => panic!("expected a rate limit, found {other:?}"),
    }
    let disk = hardened::breaker("disk");
    assert_eq!(disk.state(), BreakerState::Closed, "one failure; refusals by inner guards do not count");
    assert_eq!((disk.counts().success, disk.counts().failure), (1, 1));
}
