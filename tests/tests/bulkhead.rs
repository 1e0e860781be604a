//! The bulkhead: concurrency limit, waiting with a timeout, and permits released on every path.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use hardened::Rejected;
use hardened::bulkhead::{Bulkhead, BulkheadConfig};
use tokio::task::JoinHandle;

fn config(max: u32, wait: Option<Duration>) -> BulkheadConfig {
    let mut config = BulkheadConfig::new(max);
    config.wait = wait;
    config
}

fn leaked(max: u32, wait: Option<Duration>) -> &'static Bulkhead {
    Box::leak(Box::new(Bulkhead::new("test", config(max, wait))))
}

/// Calls in flight, and the most seen at once.
#[derive(Default)]
struct Concurrency {
    running: AtomicU32,
    peak: AtomicU32,
}

impl Concurrency {
    /// One call through `bulkhead`, waiting for its permit, counted while it holds it across an await.
    async fn call(&self, bulkhead: &Bulkhead) {
        let _permit = bulkhead.acquire().await.expect("within the wait");
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        tokio::task::yield_now().await;
        self.running.fetch_sub(1, Ordering::SeqCst);
    }

    /// Spawns `callers` tasks, each making `calls` calls one after the other through `bulkhead`.
    fn spawn_callers(
        self: &Arc<Self>,
        bulkhead: &'static Bulkhead,
        callers: usize,
        calls: usize,
    ) -> Vec<JoinHandle<()>> {
        (0..callers)
            .map(|_| {
                let concurrency = Arc::clone(self);
                tokio::spawn(async move {
                    for _ in 0..calls {
                        concurrency.call(bulkhead).await;
                    }
                })
            })
            .collect()
    }

    fn peak(&self) -> u32 {
        self.peak.load(Ordering::SeqCst)
    }
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
    let concurrency = Arc::new(Concurrency::default());
    // The holders of the three permits meet before giving them back, so the limit is reached for certain
    // however the tasks are scheduled; only holders arrive, so each meeting is three calls at once.
    let meeting = Arc::new(tokio::sync::Barrier::new(3));
    let tasks: Vec<_> = (0..201)
        .map(|_| {
            let (concurrency, meeting) = (Arc::clone(&concurrency), Arc::clone(&meeting));
            tokio::spawn(async move {
                let _permit = bulkhead.acquire().await.expect("within the wait");
                let now = concurrency.running.fetch_add(1, Ordering::SeqCst) + 1;
                concurrency.peak.fetch_max(now, Ordering::SeqCst);
                meeting.wait().await;
                concurrency.running.fetch_sub(1, Ordering::SeqCst);
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task finished");
    }
    assert_eq!(concurrency.peak(), 3);
    assert_eq!(bulkhead.available(), 3);
}

#[test]
fn permits_given_back_on_other_threads_are_free_again() {
    let bulkhead = leaked(4, None);
    let permits: Vec<_> = (0..4).map(|_| bulkhead.try_acquire().expect("free")).collect();
    assert!(bulkhead.try_acquire().is_err(), "all four are out");
    std::thread::scope(|scope| {
        for permit in permits {
            scope.spawn(move || drop(permit));
        }
    });
    assert_eq!(bulkhead.available(), 4);
    let again: Vec<_> = (0..4).map(|_| bulkhead.try_acquire().expect("given back on another thread")).collect();
    assert!(bulkhead.try_acquire().is_err(), "still four at most");
    drop(again);
    assert_eq!(bulkhead.available(), 4);
}

#[test]
fn a_held_permit_stays_counted_while_others_come_and_go() {
    let bulkhead = leaked(2, None);
    let _held = bulkhead.try_acquire().expect("free");
    for round in 0..1_000 {
        let other = bulkhead.try_acquire().unwrap_or_else(|_| panic!("round {round}: one permit is free"));
        assert!(bulkhead.try_acquire().is_err(), "round {round}: two are out");
        assert_eq!(bulkhead.available(), 0);
        drop(other);
        assert_eq!(bulkhead.available(), 1);
    }
    assert_eq!(bulkhead.refused(), 1_000);
}

#[test]
fn lowering_max_under_the_permits_out_refuses_until_enough_come_back() {
    let bulkhead = leaked(3, None);
    let mut out: Vec<_> = (0..3).map(|_| bulkhead.try_acquire().expect("free")).collect();
    bulkhead.retune(&BulkheadConfig::new(1));
    assert_eq!(bulkhead.available(), 0);
    out.truncate(1);
    assert_eq!(bulkhead.available(), 0, "one permit out, one allowed");
    assert!(bulkhead.try_acquire().is_err());
    out.clear();
    assert_eq!(bulkhead.available(), 1);
    let _one = bulkhead.try_acquire().expect("free under the new limit");
    assert!(bulkhead.try_acquire().is_err(), "one at most");
}

#[test]
fn threads_racing_for_permits_never_exceed_the_limit_and_count_every_refusal() {
    const THREADS: u32 = 4;
    const ATTEMPTS: u32 = 20_000;
    let bulkhead = leaked(3, None);
    let (running, peak) = (AtomicU32::new(0), AtomicU32::new(0));
    let admitted = AtomicU32::new(0);
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                for _ in 0..ATTEMPTS {
                    if let Ok(permit) = bulkhead.try_acquire() {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        admitted.fetch_add(1, Ordering::Relaxed);
                        running.fetch_sub(1, Ordering::SeqCst);
                        drop(permit);
                    }
                }
            });
        }
    });
    let admitted = admitted.load(Ordering::Relaxed);
    assert!(peak.load(Ordering::SeqCst) <= 3, "peak {}", peak.load(Ordering::SeqCst));
    // A refusal needs three permits out at once, each held for an instant: most attempts get one.
    assert!(admitted >= ATTEMPTS, "only {admitted} of {} attempts admitted", THREADS * ATTEMPTS);
    let refused = u64::from(THREADS * ATTEMPTS - admitted);
    assert_eq!(bulkhead.refused(), refused, "every refusal counted");
    assert_eq!(bulkhead.available(), 3, "every permit came back");
}

#[test]
fn permits_a_thread_kept_are_not_taken_again_over_a_lowered_max() {
    let bulkhead = leaked(4, None);
    // Given back on this thread, the four permits wait in its pocket for its next calls.
    drop((0..4).map(|_| bulkhead.try_acquire().expect("free")).collect::<Vec<_>>());
    bulkhead.retune(&BulkheadConfig::new(1));
    let _one = bulkhead.try_acquire().expect("free under the new limit");
    assert!(bulkhead.try_acquire().is_err(), "one at most, though three more were kept");
    assert_eq!(bulkhead.available(), 0);
    bulkhead.retune(&BulkheadConfig::new(3));
    let _two_more: Vec<_> = (0..2).map(|_| bulkhead.try_acquire().expect("free under the raised limit")).collect();
    assert!(bulkhead.try_acquire().is_err(), "three at most");
}

#[test]
fn threads_taking_back_their_own_permits_come_under_a_lowered_max() {
    const THREADS: usize = 4;
    let bulkhead = leaked(4, None);
    let (running, peak) = (AtomicU32::new(0), AtomicU32::new(0));
    let lowered = std::sync::Barrier::new(THREADS + 1);
    let calls = |rounds: u32| {
        for _ in 0..rounds {
            if let Ok(permit) = bulkhead.try_acquire() {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                std::hint::spin_loop();
                running.fetch_sub(1, Ordering::SeqCst);
                drop(permit);
            }
        }
    };
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                calls(20_000);
                lowered.wait();
                lowered.wait();
                calls(20_000);
            });
        }
        lowered.wait();
        assert!(peak.load(Ordering::SeqCst) >= 1);
        bulkhead.retune(&BulkheadConfig::new(1));
        peak.store(0, Ordering::SeqCst);
        lowered.wait();
    });
    assert_eq!(peak.load(Ordering::SeqCst), 1, "never more than one call at once under the lowered limit");
    assert_eq!(bulkhead.available(), 1, "every permit came back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retunes_under_load_lose_no_permit_and_never_exceed_the_highest_limit() {
    let bulkhead = leaked(4, Some(Duration::from_secs(30)));
    let concurrency = Arc::new(Concurrency::default());
    let callers = concurrency.spawn_callers(bulkhead, 16, 500);
    let waiting_up_to = |max| config(max, Some(Duration::from_secs(30)));
    let retuner = tokio::spawn(async move {
        for max in (0..2_000).map(|round| 1 + round % 4) {
            bulkhead.retune(&waiting_up_to(max));
            tokio::task::yield_now().await;
        }
        bulkhead.retune(&waiting_up_to(4));
    });
    for caller in callers {
        caller.await.expect("caller finished");
    }
    retuner.await.expect("retuner finished");
    assert!(concurrency.peak() <= 4, "peak {}", concurrency.peak());
    assert_eq!(bulkhead.available(), 4, "every permit came back");
    assert_eq!(bulkhead.refused(), 0, "every caller got a permit within its wait");
}
