//! `rate(..)`, `concurrency(..)`, `bulkhead(..)` and `retry(..)` with every setting, on `async fn`s: a
//! limiter, a concurrency limit and a bulkhead that wait, a concurrency limit whose wait runs out, a
//! bulkhead that refuses, and retries that ask `when` whether an error is worth it.
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use hardened::{Rejected, hardened};

#[derive(Debug, PartialEq, thiserror::Error)]
enum ApiError {
    #[error(transparent)]
    Refused(#[from] Rejected),
    #[error("service unavailable")]
    Unavailable,
    #[error("bad request")]
    BadRequest,
}

fn is_transient(error: &ApiError) -> bool {
    matches!(error, ApiError::Unavailable)
}

// One call at once per 10 ms; a second call waits for its turn instead of being refused.
#[hardened(rate(name = "anthropic", per_second = 100, burst = 1, wait = "1s"))]
async fn ask(question: &str) -> Result<usize, ApiError> {
    Ok(question.len())
}

#[hardened(concurrency(name = "completions", limit = 1, wait = "1s"))]
async fn complete(hold: Duration) -> Result<Duration, ApiError> {
    tokio::time::sleep(hold).await;
    Ok(hold)
}

#[hardened(concurrency(name = "impatient", limit = 1, wait = "5ms"))]
async fn complete_soon(hold: Duration) -> Result<Duration, ApiError> {
    tokio::time::sleep(hold).await;
    Ok(hold)
}

#[hardened(bulkhead(name = "orchestrator", max = 1, wait = "1s"))]
async fn orchestrate(hold: Duration) -> Result<Duration, ApiError> {
    tokio::time::sleep(hold).await;
    Ok(hold)
}

#[hardened(bulkhead(name = "single", max = 1))]
async fn exclusive(hold: Duration) -> Result<Duration, ApiError> {
    tokio::time::sleep(hold).await;
    Ok(hold)
}

#[hardened(retry(name = "llm", attempts = 3, backoff = "1ms", max_backoff = "5ms", jitter = false, when = is_transient))]
async fn fetch(runs: &AtomicU32, failures: u32, error: fn() -> ApiError) -> Result<u32, ApiError> {
    let run = runs.fetch_add(1, Ordering::Relaxed) + 1;
    if run <= failures { Err(error()) } else { Ok(run) }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime");
    runtime.block_on(async {
        assert_eq!(ask("one").await, Ok(3));
        assert_eq!(ask("two?").await, Ok(4), "the second call waits for a token");
        let config = hardened::rate_limiter("anthropic").config();
        assert_eq!((config.calls, config.period, config.burst), (100, Duration::from_secs(1), 1));
        assert_eq!(config.wait, Some(Duration::from_secs(1)));

        let (first, second) = tokio::join!(complete(Duration::from_millis(5)), complete(Duration::ZERO));
        assert_eq!((first, second), (Ok(Duration::from_millis(5)), Ok(Duration::ZERO)), "the second call queues");
        let config = hardened::concurrency_limit("completions").config();
        assert_eq!((config.limit, config.wait), (hardened::concurrency::Limit::Fixed(1), Duration::from_secs(1)));

        let (first, second) = tokio::join!(complete_soon(Duration::from_millis(100)), complete_soon(Duration::ZERO));
        assert_eq!(first, Ok(Duration::from_millis(100)));
        assert_eq!(second, Err(ApiError::Refused(Rejected::ConcurrencyLimited { name: "impatient" })));

        let (first, second) = tokio::join!(orchestrate(Duration::from_millis(5)), orchestrate(Duration::ZERO));
        assert_eq!((first, second), (Ok(Duration::from_millis(5)), Ok(Duration::ZERO)), "the second call waits");
        let config = hardened::bulkhead("orchestrator").config();
        assert_eq!((config.max, config.wait), (1, Some(Duration::from_secs(1))));

        let (first, second) = tokio::join!(exclusive(Duration::from_millis(5)), exclusive(Duration::ZERO));
        assert_eq!(first, Ok(Duration::from_millis(5)));
        assert_eq!(second, Err(ApiError::Refused(Rejected::BulkheadFull { name: "single" })));

        // Two transient failures, then success on the third attempt.
        let runs = AtomicU32::new(0);
        assert_eq!(fetch(&runs, 2, || ApiError::Unavailable).await, Ok(3));
        // `when` says a bad request is not worth retrying.
        let runs = AtomicU32::new(0);
        assert_eq!(fetch(&runs, 1, || ApiError::BadRequest).await, Err(ApiError::BadRequest));
        assert_eq!(runs.load(Ordering::Relaxed), 1);
        // At most `attempts` retries after the first attempt.
        let runs = AtomicU32::new(0);
        assert_eq!(fetch(&runs, 10, || ApiError::Unavailable).await, Err(ApiError::Unavailable));
        assert_eq!(runs.load(Ordering::Relaxed), 4);
    });
    let config = hardened::retry_policy("llm").config();
    assert_eq!(
        (config.attempts, config.backoff, config.max_backoff),
        (3, Duration::from_millis(1), Duration::from_millis(5))
    );
    assert!(!config.jitter);
    assert_eq!(hardened::retry_policy("llm").counts().0, 5);
}
