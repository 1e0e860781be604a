//! Every short form of the guard arguments, as the guards each call site resolves on its first call.
use std::time::Duration;

use hardened::{Rejected, hardened};

#[derive(Debug, PartialEq, thiserror::Error)]
enum ApiError {
    #[error("refused: {0}")]
    Refused(#[from] Rejected),
    #[error("upstream failed")]
    Upstream,
}

#[hardened(breaker = "search")]
fn search(ok: bool) -> Result<u32, ApiError> {
    if ok { Ok(1) } else { Err(ApiError::Upstream) }
}

#[hardened(breaker)]
fn own_breaker() -> Result<u32, ApiError> {
    Ok(2)
}

#[hardened(rate = 10)]
fn ten_per_second() -> Result<(), ApiError> {
    Ok(())
}

#[hardened(rate = 2.5)]
fn fractional_rate() -> Result<(), ApiError> {
    Ok(())
}

#[hardened(rate = "100/min", burst = 20)]
fn per_minute() -> Result<(), ApiError> {
    Ok(())
}

#[hardened(bulkhead = 5)]
fn five_at_once() -> Result<(), ApiError> {
    Ok(())
}

#[hardened(concurrency = 8)]
async fn eight_in_flight() -> Result<u32, ApiError> {
    Ok(5)
}

#[hardened(timeout = "30s")]
async fn with_timeout() -> Result<u32, ApiError> {
    tokio::task::yield_now().await;
    Ok(3)
}

#[hardened(retry = 2)]
async fn with_retries() -> Result<u32, ApiError> {
    Ok(4)
}

fn site(function: &str) -> &'static hardened::Site {
    hardened::sites().iter().find(|site| site.function() == function).expect("the function is registered")
}

fn main() {
    assert_eq!(search(true), Ok(1));
    assert_eq!(search(false), Err(ApiError::Upstream));
    let breaker = site("search").guards().and_then(|guards| guards.breaker()).expect("a breaker");
    assert!(std::ptr::eq(breaker, hardened::breaker("search")), "`breaker = \"search\"` names a shared breaker");
    assert_eq!((breaker.counts().success, breaker.counts().failure), (1, 1));

    assert_eq!(own_breaker(), Ok(2));
    let own = site("own_breaker").guards().and_then(|guards| guards.breaker()).expect("a breaker");
    assert!(own.name().ends_with("::own_breaker"), "a bare `breaker` belongs to its function: {}", own.name());

    assert_eq!(ten_per_second(), Ok(()));
    let limiter = site("ten_per_second").guards().and_then(|guards| guards.rate_limiter()).expect("a limiter");
    let config = limiter.config();
    assert_eq!((config.calls, config.period, config.burst, config.wait), (10, Duration::from_secs(1), 10, None));

    // 2.5 per second is one call every 400 ms, with room for one at a time.
    assert_eq!(fractional_rate(), Ok(()));
    assert!(matches!(fractional_rate(), Err(ApiError::Refused(Rejected::RateLimited { .. }))));
    let config = site("fractional_rate").guards().and_then(|guards| guards.rate_limiter()).expect("a limiter").config();
    assert_eq!((config.calls, config.period, config.burst), (1, Duration::from_millis(400), 1));

    assert_eq!(per_minute(), Ok(()));
    let config = site("per_minute").guards().and_then(|guards| guards.rate_limiter()).expect("a limiter").config();
    assert_eq!((config.calls, config.period, config.burst), (100, Duration::from_mins(1), 20));

    assert_eq!(five_at_once(), Ok(()));
    let bulkhead = site("five_at_once").guards().and_then(|guards| guards.bulkhead()).expect("a bulkhead");
    assert_eq!((bulkhead.config().max, bulkhead.config().wait), (5, None));

    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime");
    runtime.block_on(async {
        assert_eq!(with_timeout().await, Ok(3));
        assert_eq!(with_retries().await, Ok(4));
        assert_eq!(eight_in_flight().await, Ok(5));
    });
    let limit = site("eight_in_flight").guards().and_then(|guards| guards.concurrency()).expect("a concurrency limit");
    assert_eq!((limit.config().limit, limit.config().wait), (hardened::concurrency::Limit::Fixed(8), Duration::from_secs(30)));
    assert!(limit.name().ends_with("::eight_in_flight"), "an unnamed limit belongs to its function: {}", limit.name());
    // A call still queued when its wait runs out is refused.
    assert!(site("eight_in_flight").outcomes().any(|outcome| outcome == hardened::Outcome::Rejected));
    assert_eq!(site("with_timeout").guards().and_then(|guards| guards.timeout()), Some(Duration::from_secs(30)));
    let policy = site("with_retries").guards().and_then(|guards| guards.retry()).expect("a retry policy");
    assert_eq!(policy.config().attempts, 2);
    assert!(site("with_retries").retries());
}
