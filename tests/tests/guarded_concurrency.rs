//! The concurrency limit through the macro: calls over the limit queue and get their turn, a queued call
//! is refused at its wait or abandoned at its timeout, it sits outside the bulkhead, its refusals are never
//! retried, and configuration retunes it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use hardened::concurrency::Limit;
use hardened::{Rejected, hardened};
use hardened_tests::{calls, sample, until};
use tokio::sync::Notify;
use tokio::time::Instant;

#[derive(Debug, PartialEq, thiserror::Error)]
enum AppError {
    #[error("refused: {0}")]
    Refused(#[from] Rejected),
}

/// Calls queued and in flight under the limit called `name`.
fn queue(name: &str) -> (u32, u32) {
    let limit = hardened::concurrency_limit(name);
    (limit.queued(), limit.in_flight())
}

#[hardened(concurrency(name = "one_at_a_time", limit = 1, wait = "2s"))]
async fn one_at_a_time(hold: Arc<Notify>) -> Result<(), AppError> {
    hold.notified().await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_call_over_the_limit_queues_for_its_turn_and_is_refused_when_its_wait_runs_out() {
    let hold = Arc::new(Notify::new());
    let first = tokio::spawn(one_at_a_time(hold.clone()));
    until(|| queue("one_at_a_time") == (0, 1)).await;
    let second = tokio::spawn(one_at_a_time(hold.clone()));
    until(|| queue("one_at_a_time") == (1, 1)).await;
    assert_eq!(sample("hardened_concurrency_queued", &[("name", "one_at_a_time")]), Some(1));
    hold.notify_one();
    first.await.expect("finished").expect("the first call ran");
    until(|| queue("one_at_a_time") == (0, 1)).await;

    // The second call holds the only turn; a third queues for two seconds, then is refused.
    let start = Instant::now();
    let third = one_at_a_time(hold.clone()).await;
    assert_eq!(third, Err(AppError::Refused(Rejected::ConcurrencyLimited { name: "one_at_a_time" })));
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    hold.notify_one();
    second.await.expect("finished").expect("the queued call got its turn");
    assert_eq!(queue("one_at_a_time"), (0, 0));
    assert_eq!((calls("one_at_a_time", "ok"), calls("one_at_a_time", "rejected")), (2, 1));
    let refused = [("guard", "concurrency"), ("name", "one_at_a_time")];
    assert_eq!(sample("hardened_rejections_total", &refused), Some(1));
    assert_eq!(sample("hardened_concurrency_limit", &[("name", "one_at_a_time")]), Some(1));
}

#[hardened(concurrency(name = "timed", limit = 1), timeout = "1s")]
async fn timed(hold: Arc<Notify>) -> Result<(), AppError> {
    hold.notified().await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_timeout_bounds_the_wait_in_the_queue() {
    let hold = Arc::new(Notify::new());
    let first = tokio::spawn(timed(hold.clone()));
    until(|| queue("timed") == (0, 1)).await;
    let start = Instant::now();
    // The queue would wait thirty seconds; the call's timeout of one second ends it first.
    let second = timed(hold.clone()).await;
    assert_eq!(second, Err(AppError::Refused(Rejected::TimedOut { after: Duration::from_secs(1) })));
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    let timed_out = Err(AppError::Refused(Rejected::TimedOut { after: Duration::from_secs(1) }));
    assert_eq!(first.await.expect("finished"), timed_out, "the first call timed out as well");
    assert_eq!(queue("timed"), (0, 0), "the abandoned wait left the queue, the first call gave its turn back");
    assert_eq!(calls("timed", "timeout"), 2);
}

#[hardened(concurrency(name = "outside", limit = 2, wait = "10s"), bulkhead(name = "inside", max = 1))]
async fn limited_twice(hold: Arc<Notify>) -> Result<(), AppError> {
    hold.notified().await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_concurrency_limit_admits_before_the_bulkhead_refuses() {
    let hold = Arc::new(Notify::new());
    let first = tokio::spawn(limited_twice(hold.clone()));
    until(|| queue("outside") == (0, 1)).await;
    // A turn is free, the bulkhead's one permit is not: the bulkhead refuses at once and the turn goes back.
    assert_eq!(limited_twice(hold.clone()).await, Err(AppError::Refused(Rejected::BulkheadFull { name: "inside" })));
    assert_eq!(queue("outside"), (0, 1));
    hold.notify_one();
    first.await.expect("finished").expect("ran");
    assert_eq!(queue("outside"), (0, 0));
}

#[hardened(concurrency(name = "retried", limit = 1, wait = "1s"), retry(attempts = 3, backoff = "10ms"))]
async fn retried(attempts: &AtomicU32, hold: Arc<Notify>) -> Result<(), AppError> {
    attempts.fetch_add(1, Ordering::SeqCst);
    hold.notified().await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_refusal_by_the_concurrency_limit_is_never_retried() {
    static HOLDER: AtomicU32 = AtomicU32::new(0);
    let hold = Arc::new(Notify::new());
    let first = tokio::spawn(retried(&HOLDER, hold.clone()));
    until(|| queue("retried") == (0, 1)).await;
    let attempts = AtomicU32::new(0);
    let start = Instant::now();
    assert_eq!(
        retried(&attempts, hold.clone()).await,
        Err(AppError::Refused(Rejected::ConcurrencyLimited { name: "retried" }))
    );
    assert_eq!(start.elapsed(), Duration::from_secs(1), "one wait, no second attempt");
    assert_eq!(attempts.load(Ordering::SeqCst), 0, "the body never ran");
    assert_eq!(sample("hardened_retries_total", &[("function", "retried")]), Some(0));
    hold.notify_one();
    first.await.expect("finished").expect("ran");
}

#[hardened(concurrency(name = "configured", limit = 1))]
async fn configured() -> Result<(), AppError> {
    Ok(())
}

#[test]
fn configuration_retunes_a_running_limit() {
    let _ = configured;
    // Made from the literal of the function that declares it.
    assert_eq!(hardened::concurrency_limit("configured").config().limit, Limit::Fixed(1));
    let file = "[concurrency.configured]\nlimit = 4\nwait = \"5s\"\n";
    hardened::config::install(hardened::config::parse(file, "hardened.toml").expect("a valid file"));
    let config = hardened::concurrency_limit("configured").config();
    assert_eq!((config.limit, config.wait), (Limit::Fixed(4), Duration::from_secs(5)));
    let effective = hardened::config::effective();
    assert!(effective.contains("[concurrency.configured]\nlimit = 4\nwait = \"5s\"\n"), "{effective}");
}
