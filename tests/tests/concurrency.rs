//! The concurrency limit: calls over the limit queue in turn up to their wait, the limit holds under
//! contention, and a retune lets queued calls in or holds new ones back.

use std::time::Duration;

use hardened::Rejected;
use hardened::concurrency::{ConcurrencyConfig, ConcurrencyLimit, Limit};
use hardened_tests::until;
use tokio::time::Instant;

fn leaked(config: ConcurrencyConfig) -> &'static ConcurrencyLimit {
    Box::leak(Box::new(ConcurrencyLimit::new("test", config)))
}

#[test]
fn calls_queue_for_thirty_seconds_unless_told_otherwise() {
    let config = ConcurrencyConfig::new(4);
    assert_eq!((config.limit, config.wait), (Limit::Fixed(4), Duration::from_secs(30)));
    assert_eq!(ConcurrencyConfig::default().limit, Limit::Fixed(10));
    let limit = leaked(config.with_wait(Duration::from_secs(5)));
    assert_eq!(limit.config().wait, Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn a_call_over_the_limit_queues_and_gets_the_turn_given_back() {
    let limit = leaked(ConcurrencyConfig::new(1));
    let first = limit.acquire().await.expect("a free turn");
    assert_eq!((limit.in_flight(), limit.queued()), (1, 0));
    let queued = tokio::spawn(async move { limit.acquire().await.map(drop) });
    until(|| limit.queued() == 1).await;
    // Ten seconds in the queue, well within the default wait of thirty.
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(!queued.is_finished(), "still waiting for the turn");
    drop(first);
    queued.await.expect("task finished").expect("the turn given back went to the queued call");
    assert_eq!((limit.in_flight(), limit.queued(), limit.refused()), (0, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_queued_call_is_refused_when_its_wait_runs_out() {
    let limit = leaked(ConcurrencyConfig::new(1).with_wait(Duration::from_secs(2)));
    let _held = limit.acquire().await.expect("a free turn");
    let start = Instant::now();
    let refusal = limit.acquire().await.expect_err("nobody gives the turn back");
    assert_eq!(refusal, Rejected::ConcurrencyLimited { name: "test" });
    assert_eq!((refusal.guard(), refusal.name()), ("concurrency", "test"));
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert_eq!((limit.queued(), limit.refused()), (0, 1));
}

#[test]
fn try_acquire_refuses_at_once_when_every_turn_is_taken() {
    let limit = leaked(ConcurrencyConfig::new(2));
    let _first = limit.try_acquire().expect("free");
    let _second = limit.try_acquire().expect("free");
    assert_eq!(limit.try_acquire().expect_err("full"), Rejected::ConcurrencyLimited { name: "test" });
}

#[tokio::test(start_paused = true)]
async fn raising_the_limit_lets_queued_calls_in_at_once() {
    let limit = leaked(ConcurrencyConfig::new(1));
    let _held = limit.acquire().await.expect("a free turn");
    let queued: Vec<_> = (0..2).map(|_| tokio::spawn(async move { limit.acquire().await.map(drop) })).collect();
    until(|| limit.queued() == 2).await;
    limit.retune(&ConcurrencyConfig::new(3));
    for call in queued {
        call.await.expect("task finished").expect("let in by the higher limit");
    }
    assert_eq!(limit.config().limit, Limit::Fixed(3));
}

#[tokio::test(start_paused = true)]
async fn lowering_the_limit_under_the_calls_in_flight_queues_new_calls_until_enough_end() {
    let limit = leaked(ConcurrencyConfig::new(3));
    let mut held: Vec<_> = (0..3).map(|_| limit.try_acquire().expect("free")).collect();
    limit.retune(&ConcurrencyConfig::new(1));
    assert_eq!(limit.in_flight(), 3, "calls in flight keep their turns");
    let queued = tokio::spawn(async move { limit.acquire().await.map(drop) });
    until(|| limit.queued() == 1).await;
    held.truncate(1);
    tokio::task::yield_now().await;
    assert!(!queued.is_finished(), "one call still in flight fills the lowered limit");
    held.clear();
    queued.await.expect("task finished").expect("a turn once the calls in flight are under the limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_calls_never_exceed_the_limit_and_none_is_refused() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    let limit = leaked(ConcurrencyConfig::new(3));
    let (running, peak) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    // The holders of the three turns meet before giving them back, so the limit is reached for certain
    // however the tasks are scheduled; only holders arrive, so each meeting is three calls at once.
    let meeting = Arc::new(tokio::sync::Barrier::new(3));
    let tasks: Vec<_> = (0..201)
        .map(|_| {
            let (running, peak, meeting) = (Arc::clone(&running), Arc::clone(&peak), Arc::clone(&meeting));
            tokio::spawn(async move {
                let _turn = limit.acquire().await.expect("within thirty seconds");
                peak.fetch_max(running.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                meeting.wait().await;
                running.fetch_sub(1, Ordering::SeqCst);
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task finished");
    }
    assert_eq!(peak.load(Ordering::SeqCst), 3);
    assert_eq!((limit.in_flight(), limit.refused()), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_queued_call_leaves_the_queue() {
    let limit = leaked(ConcurrencyConfig::new(1));
    let held = limit.acquire().await.expect("a free turn");
    let queued = tokio::spawn(async move { limit.acquire().await.map(drop) });
    until(|| limit.queued() == 1).await;
    queued.abort();
    assert!(queued.await.expect_err("aborted").is_cancelled());
    assert_eq!(limit.queued(), 0, "counted as queued no longer");
    drop(held);
    assert_eq!((limit.in_flight(), limit.refused()), (0, 0));
}
