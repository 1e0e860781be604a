//! Guards through the macro: refusals reach the caller as errors, outcomes are classified as rejected or
//! timeout, the order of the guards holds, retries and fallbacks behave, and guard metrics are exported.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use hardened::{BreakerState, Rejected, hardened};
use hardened_tests::{calls, sample};

#[derive(Debug, PartialEq, thiserror::Error)]
enum AppError {
    #[error("refused: {0}")]
    Refused(#[from] Rejected),
    #[error("the dependency failed")]
    Failed,
}

#[hardened(breaker(name = "sync_breaker", consecutive_failures = 2))]
fn flaky(fail: bool) -> Result<u32, AppError> {
    if fail { Err(AppError::Failed) } else { Ok(1) }
}

#[test]
fn an_open_breaker_refuses_with_the_callers_error_type() {
    assert_eq!(flaky(false), Ok(1));
    assert_eq!(flaky(true), Err(AppError::Failed));
    assert_eq!(flaky(true), Err(AppError::Failed));
    assert_eq!(hardened::breaker("sync_breaker").state(), BreakerState::Open);
    assert_eq!(flaky(false), Err(AppError::Refused(Rejected::CircuitOpen { name: "sync_breaker" })));
    assert_eq!((calls("flaky", "ok"), calls("flaky", "error"), calls("flaky", "rejected")), (1, 2, 1));
    assert_eq!(sample("hardened_circuit_breaker_state", &[("name", "sync_breaker")]), Some(1));
    assert_eq!(sample("hardened_rejections_total", &[("guard", "breaker"), ("name", "sync_breaker")]), Some(1));
    let transitions = [("name", "sync_breaker"), ("from", "closed"), ("to", "open")];
    assert_eq!(sample("hardened_circuit_breaker_transitions_total", &transitions), Some(1));
}

/// Never called: its breaker's series exist all the same.
#[hardened(breaker = "idle_breaker")]
fn idle_call() -> Result<(), AppError> {
    Ok(())
}

#[test]
fn a_breaker_exposes_its_own_transitions_at_zero_before_any_happens() {
    let _ = idle_call;
    for (from, to) in [("closed", "open"), ("open", "half_open"), ("half_open", "closed"), ("half_open", "open")] {
        let transition = [("name", "idle_breaker"), ("from", from), ("to", to)];
        assert_eq!(sample("hardened_circuit_breaker_transitions_total", &transition), Some(0), "{from} to {to}");
    }
    let forced = [("name", "idle_breaker"), ("from", "closed"), ("to", "forced_open")];
    assert_eq!(
        sample("hardened_circuit_breaker_transitions_total", &forced),
        None,
        "forcing is the API's, shown once done"
    );
}

#[hardened(rate = 2, burst = 2)]
fn limited() -> Result<(), AppError> {
    Ok(())
}

#[test]
fn an_exhausted_rate_limit_refuses_with_retry_after() {
    assert!(limited().is_ok());
    assert!(limited().is_ok());
    let Err(AppError::Refused(refusal)) = limited() else { panic!("the third call in the same instant is refused") };
    assert_eq!(refusal.guard(), "rate_limiter");
    assert_eq!(refusal.name(), "guarded::limited");
    assert!(refusal.retry_after().is_some_and(|after| after > Duration::ZERO && after <= Duration::from_millis(500)));
    assert_eq!(calls("limited", "rejected"), 1);
}

#[hardened(breaker(name = "order_breaker", consecutive_failures = 1), rate = "1/h")]
async fn behind_breaker_and_limiter() -> Result<(), AppError> {
    Ok(())
}

#[tokio::test]
async fn a_refusal_by_an_inner_guard_does_not_count_against_the_breaker() {
    assert!(behind_breaker_and_limiter().await.is_ok());
    for _ in 0..5 {
        let refused = behind_breaker_and_limiter().await;
        assert!(matches!(refused, Err(AppError::Refused(Rejected::RateLimited { .. }))), "{refused:?}");
    }
    let breaker = hardened::breaker("order_breaker");
    assert_eq!(breaker.state(), BreakerState::Closed, "rate-limit refusals are not failures of the dependency");
    assert_eq!(breaker.counts().success, 1);
    assert_eq!(breaker.counts().failure, 0);
}

#[hardened(breaker(name = "timeout_breaker", consecutive_failures = 1), timeout = "1s")]
async fn hangs(duration: Duration) -> Result<(), AppError> {
    tokio::time::sleep(duration).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_timeout_abandons_the_call_and_counts_against_the_breaker() {
    assert!(hangs(Duration::from_millis(500)).await.is_ok());
    let started = tokio::time::Instant::now();
    let timed_out = hangs(Duration::from_mins(1)).await;
    assert_eq!(timed_out, Err(AppError::Refused(Rejected::TimedOut { after: Duration::from_secs(1) })));
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    assert_eq!(calls("hangs", "timeout"), 1);
    assert_eq!(hardened::breaker("timeout_breaker").state(), BreakerState::Open);
    assert_eq!(sample("hardened_rejections_total", &[("guard", "timeout"), ("name", "guarded::hangs")]), Some(1));
}

#[hardened(bulkhead = 1)]
async fn exclusive(hold: Arc<tokio::sync::Notify>) -> Result<(), AppError> {
    hold.notified().await;
    Ok(())
}

#[tokio::test]
async fn a_full_bulkhead_refuses_and_frees_its_permit_when_the_holder_is_cancelled() {
    let hold = Arc::new(tokio::sync::Notify::new());
    let holder = tokio::spawn(exclusive(hold.clone()));
    let mut bulkhead = None;
    for _ in 0..10_000 {
        bulkhead = hardened::bulkheads().into_iter().find(|bulkhead| bulkhead.name() == "guarded::exclusive");
        if bulkhead.is_some_and(|bulkhead| bulkhead.available() == 0) {
            break;
        }
        tokio::task::yield_now().await;
    }
    let bulkhead = bulkhead.expect("the holder made the bulkhead");
    assert_eq!(bulkhead.available(), 0, "the holder took the only permit");
    assert_eq!(
        exclusive(hold.clone()).await,
        Err(AppError::Refused(Rejected::BulkheadFull { name: "guarded::exclusive" }))
    );
    holder.abort();
    assert!(holder.await.expect_err("aborted").is_cancelled());
    assert_eq!(bulkhead.available(), 1, "the cancelled call gave its permit back");
    assert_eq!(calls("exclusive", "cancelled"), 1);
    assert_eq!(calls("exclusive", "rejected"), 1);
}

#[hardened(retry(attempts = 3, backoff = "10ms", jitter = false))]
async fn eventually(attempts: &AtomicU32, succeed_on: u32) -> Result<u32, AppError> {
    let attempt = attempts.fetch_add(1, Ordering::SeqCst) + 1;
    if attempt >= succeed_on { Ok(attempt) } else { Err(AppError::Failed) }
}

#[tokio::test(start_paused = true)]
async fn retries_back_off_exponentially_until_success_or_attempts_run_out() {
    let attempts = AtomicU32::new(0);
    let started = tokio::time::Instant::now();
    assert_eq!(eventually(&attempts, 3).await, Ok(3));
    assert_eq!(started.elapsed(), Duration::from_millis(10 + 20), "two backoffs: 10 ms, then 20 ms");
    assert_eq!(sample("hardened_retries_total", &[("function", "eventually")]), Some(2));

    let attempts = AtomicU32::new(0);
    assert_eq!(eventually(&attempts, 10).await, Err(AppError::Failed));
    assert_eq!(attempts.load(Ordering::SeqCst), 4, "the first attempt and three retries");
    assert_eq!((calls("eventually", "ok"), calls("eventually", "error")), (1, 1), "one outcome per call");
}

fn is_transient(error: &AppError) -> bool {
    !matches!(error, AppError::Failed)
}

#[hardened(retry(attempts = 5, backoff = "1ms", when = is_transient))]
async fn permanent_failure(attempts: &AtomicU32) -> Result<(), AppError> {
    attempts.fetch_add(1, Ordering::SeqCst);
    Err(AppError::Failed)
}

#[tokio::test(start_paused = true)]
async fn retry_when_decides_which_errors_are_worth_another_attempt() {
    let attempts = AtomicU32::new(0);
    assert_eq!(permanent_failure(&attempts).await, Err(AppError::Failed));
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
}

#[hardened(breaker(name = "retried_breaker"), retry(attempts = 3, backoff = "1ms"))]
async fn behind_open_breaker(attempts: &AtomicU32) -> Result<(), AppError> {
    attempts.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_refusal_by_the_breaker_is_never_retried() {
    hardened::breaker("retried_breaker").force_open();
    let attempts = AtomicU32::new(0);
    let refused = behind_open_breaker(&attempts).await;
    assert_eq!(refused, Err(AppError::Refused(Rejected::CircuitOpen { name: "retried_breaker" })));
    assert_eq!(attempts.load(Ordering::SeqCst), 0);
    assert_eq!(sample("hardened_retries_total", &[("function", "behind_open_breaker")]), Some(0));
}

fn cached_answer(error: AppError) -> Result<String, AppError> {
    match error {
        AppError::Refused(_) => Ok("cached".to_owned()),
        AppError::Failed => Err(error),
    }
}

#[hardened(breaker = "fallback_breaker", fallback = cached_answer)]
fn answer() -> Result<String, AppError> {
    Ok("fresh".to_owned())
}

#[test]
fn a_fallback_answers_for_a_refused_call_and_the_refusal_is_still_recorded() {
    assert_eq!(answer(), Ok("fresh".to_owned()));
    hardened::breaker("fallback_breaker").force_open();
    assert_eq!(answer(), Ok("cached".to_owned()));
    assert_eq!(calls("answer", "rejected"), 1);
    hardened::breaker("fallback_breaker").close();
    assert_eq!(answer(), Ok("fresh".to_owned()));
}

#[hardened(breaker = "shared_llm")]
fn first_caller() -> Result<(), AppError> {
    Err(AppError::Failed)
}

#[hardened(breaker = "shared_llm")]
fn second_caller() -> Result<(), AppError> {
    Ok(())
}

#[test]
fn functions_naming_one_breaker_share_it() {
    let _ = first_caller();
    let _ = second_caller();
    let counts = hardened::breaker("shared_llm").counts();
    assert_eq!((counts.success, counts.failure), (1, 1));
}

#[hardened(breaker = "never_called_breaker", bulkhead = 3)]
fn never_called() -> Result<(), AppError> {
    Ok(())
}

#[test]
fn guard_series_exist_before_the_first_call() {
    let rendered = hardened::metrics::render();
    assert!(rendered.contains(r#"hardened_circuit_breaker_state{name="never_called_breaker"} 0"#), "{rendered}");
    assert!(rendered.contains(r#"hardened_bulkhead_max_permits{name="guarded::never_called"} 3"#));
    assert!(rendered.contains(r#"hardened_bulkhead_available_permits{name="guarded::never_called"} 3"#));
    assert!(rendered.contains(
        r#"hardened_calls_total{function="never_called",module="guarded",kind="function",outcome="rejected"} 0"#
    ));
    assert!(!rendered.contains(r#"function="never_called",module="guarded",kind="function",outcome="timeout""#));
}

#[hardened(rate = "1/h")]
fn hourly() -> Result<(), AppError> {
    Ok(())
}

#[test]
fn the_first_call_finds_a_full_bucket_even_with_a_burst_of_one() {
    assert_eq!(hourly(), Ok(()));
    assert!(matches!(hourly(), Err(AppError::Refused(Rejected::RateLimited { .. }))));
}

/// Sets its flag when dropped.
struct DropFlag(Arc<std::sync::atomic::AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Does not use `_held`: an `async fn` keeps it until its future ends all the same.
#[hardened(breaker = "argument_lifetime_breaker", bulkhead = 2)]
async fn holds_its_arguments(_held: DropFlag, mut count: u32, gate: Arc<tokio::sync::Notify>) -> Result<u32, AppError> {
    count += 1;
    gate.notified().await;
    Ok(count)
}

#[tokio::test]
async fn a_guarded_async_call_keeps_its_arguments_until_it_ends_and_records_nothing_unpolled() {
    let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let gate = Arc::new(tokio::sync::Notify::new());
    let never_polled = holds_its_arguments(DropFlag(dropped.clone()), 1, gate.clone());
    assert!(!dropped.load(Ordering::SeqCst), "the argument lives in the future");
    drop(never_polled);
    assert!(dropped.load(Ordering::SeqCst));
    assert_eq!(calls("holds_its_arguments", "cancelled"), 0, "a future never polled records nothing");

    dropped.store(false, Ordering::SeqCst);
    let call = tokio::spawn(holds_its_arguments(DropFlag(dropped.clone()), 1, gate.clone()));
    while hardened_tests::in_flight("holds_its_arguments") == 0 {
        tokio::task::yield_now().await;
    }
    assert!(!dropped.load(Ordering::SeqCst), "held while the call is pending");
    gate.notify_one();
    assert_eq!(call.await.expect("the call completes"), Ok(2));
    assert!(dropped.load(Ordering::SeqCst));
    assert_eq!(calls("holds_its_arguments", "ok"), 1);
}
