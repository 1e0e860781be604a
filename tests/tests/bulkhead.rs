//! The bulkhead: concurrency limit, waiting with a timeout, and permits released on every path.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use hardened::Rejected;
use hardened::bulkhead::{Bulkhead, BulkheadConfig};

fn leaked(max: u32, wait: Option<Duration>) -> &'static Bulkhead {
    let mut config = BulkheadConfig::new(max);
    config.wait = wait;
    Box::leak(Box::new(Bulkhead::new("test", config)))
}

#[test]
fn at_most_max_permits_are_out() {
    let bulkhead = leaked(2, None);
    let first = bulkhead.try_acquire().expect("free");
    let _second = bulkhead.try_acquire().expect("free");
    assert_eq!(bulkhead.available(), 0);
    assert_eq!(bulkhead.try_acquire().expect_err("full"), Rejected::BulkheadFull { name: "test" });
    drop(first);
    assert_eq!(bulkhead.available(), 1);
    let _again = bulkhead.try_acquire().expect("a dropped permit is free again");
    assert_eq!(bulkhead.refused(), 1);
}

#[test]
fn a_panic_releases_the_permit() {
    let bulkhead = leaked(1, None);
    let result = std::panic::catch_unwind(|| {
        let _permit = bulkhead.try_acquire().expect("free");
        panic!("inside the call");
    });
    assert!(result.is_err());
    assert_eq!(bulkhead.available(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_waiter_gets_a_released_permit_or_gives_up_at_its_wait() {
    let bulkhead = leaked(1, Some(Duration::from_secs(2)));
    let held = bulkhead.acquire().await.expect("free");
    let waiter = tokio::spawn(async move { bulkhead.acquire().await.map(drop) });
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop(held);
    waiter.await.expect("task finished").expect("the released permit went to the waiter");

    let _held = bulkhead.acquire().await.expect("free again");
    let start = tokio::time::Instant::now();
    let refusal = bulkhead.acquire().await.expect_err("nobody releases");
    assert_eq!(refusal, Rejected::BulkheadFull { name: "test" });
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

#[tokio::test]
async fn a_cancelled_waiter_and_a_cancelled_holder_leave_nothing_behind() {
    let bulkhead = leaked(1, Some(Duration::from_mins(1)));
    let holder = tokio::spawn(async move {
        let _permit = bulkhead.acquire().await.expect("free");
        std::future::pending::<()>().await;
    });
    for _ in 0..10_000 {
        if bulkhead.available() == 0 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(bulkhead.available(), 0, "the holder took the only permit");
    let waiter = tokio::spawn(async move { bulkhead.acquire().await.map(drop) });
    tokio::task::yield_now().await;
    waiter.abort();
    holder.abort();
    let _ = (waiter.await, holder.await);
    assert_eq!(bulkhead.available(), 1);
    let _free = bulkhead.try_acquire().expect("free after both were cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_calls_never_exceed_the_limit() {
    let bulkhead = leaked(3, Some(Duration::from_secs(30)));
    let running = Arc::new(AtomicU32::new(0));
    let peak = Arc::new(AtomicU32::new(0));
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let (running, peak) = (running.clone(), peak.clone());
            tokio::spawn(async move {
                let _permit = bulkhead.acquire().await.expect("within the wait");
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::task::yield_now().await;
                running.fetch_sub(1, Ordering::SeqCst);
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task finished");
    }
    assert_eq!(peak.load(Ordering::SeqCst), 3);
    assert_eq!(bulkhead.available(), 3);
}
