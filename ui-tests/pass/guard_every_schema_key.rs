//! Every key of every guard kind that the attribute accepts, as the schema lists them, written once on a
//! function of the kind it suits; the settings reach the guards they name.
use std::time::Duration;

use hardened::breaker::WindowKind;
use hardened::{Rejected, hardened};

#[derive(Debug, PartialEq, thiserror::Error)]
enum ServiceError {
    #[error(transparent)]
    Refused(#[from] Rejected),
    #[error("the upstream timed out")]
    Timeout,
}

fn is_transient(error: &ServiceError) -> bool {
    matches!(error, ServiceError::Timeout)
}

// The rate-judging keys of a breaker.
#[hardened(breaker(
    name = "search",
    failure_rate = 60,
    slow_rate = 90,
    slow_call = "3s",
    window = 40,
    window_kind = "time",
    min_calls = 8,
    open_for = "45s",
    half_open_calls = 4,
))]
fn search(query: &str) -> Result<usize, ServiceError> {
    Ok(query.len())
}

// `consecutive_failures`, which replaces the rate-judging keys.
#[hardened(breaker(name = "payments", consecutive_failures = 3, slow_call = "1s", open_for = "10s"))]
fn charge(cents: u64) -> Result<u64, ServiceError> {
    Ok(cents)
}

#[hardened(rate(name = "geocoder", per_second = "60/min", burst = 5, wait = "2s", scope = "local"))]
async fn geocode(address: &str) -> Result<usize, ServiceError> {
    Ok(address.len())
}

#[derive(Debug, PartialEq)]
struct Reply {
    tokens: u64,
}

fn tokens_used(reply: &Reply) -> u64 {
    reply.tokens
}

// A keyed, weighted limit, settled from the reply.
#[hardened(rate(
    name = "tenant_tokens",
    per_minute = 600,
    key = tenant,
    max_keys = 500,
    cost = prompt.len(),
    settle = tokens_used
))]
async fn answer(tenant: u32, prompt: &str) -> Result<Reply, ServiceError> {
    Ok(Reply { tokens: u64::from(tenant) + prompt.len() as u64 })
}

#[hardened(rate(name = "hourly", per_hour = 100))]
fn hourly(n: u32) -> Result<u32, ServiceError> {
    Ok(n)
}

#[hardened(concurrency(name = "completions", limit = 3, wait = "750ms"))]
async fn complete(prompt: &str) -> Result<usize, ServiceError> {
    Ok(prompt.len())
}

#[hardened(concurrency(name = "embeddings", limit = "gradient", wait = "2s", min = 2, max = 40))]
async fn embed(text: &str) -> Result<usize, ServiceError> {
    Ok(text.len())
}

#[hardened(bulkhead(name = "renderer", max = 2, wait = "500ms"))]
async fn render(page: u32) -> Result<u32, ServiceError> {
    Ok(page)
}

// Two calls in flight for each tenant.
#[hardened(bulkhead(name = "per_tenant", max = 2, key = tenant))]
fn export(tenant: &str) -> Result<usize, ServiceError> {
    Ok(tenant.len())
}

#[hardened(retry(name = "inventory", attempts = 2, backoff = "1ms", max_backoff = "4ms", jitter = false, when = is_transient))]
async fn stock(sku: &str) -> Result<usize, ServiceError> {
    Ok(sku.len())
}

fn main() {
    assert_eq!(search("rust"), Ok(4));
    let config = hardened::breaker("search").config();
    assert_eq!((config.failure_rate, config.slow_rate, config.slow_call), (60, 90, Duration::from_secs(3)));
    assert_eq!((config.window, config.window_kind, config.min_calls), (40, WindowKind::Time, 8));
    assert_eq!((config.open_for, config.half_open_calls), (Duration::from_secs(45), 4));

    assert_eq!(charge(250), Ok(250));
    let config = hardened::breaker("payments").config();
    assert_eq!(config.consecutive_failures, Some(3));
    assert_eq!((config.slow_call, config.open_for), (Duration::from_secs(1), Duration::from_secs(10)));

    assert_eq!(hourly(1), Ok(1));
    assert_eq!(export("acme"), Ok(4));
    assert_eq!(hardened::bulkhead("per_tenant").config().max, 2);
    let config = hardened::rate_limiter("hourly").config();
    assert_eq!((config.calls, config.period), (100, Duration::from_secs(3_600)));

    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime");
    runtime.block_on(async {
        assert_eq!(geocode("1 Main St").await, Ok(9));
        assert_eq!(answer(7, "hello").await, Ok(Reply { tokens: 12 }));
        assert_eq!(complete("hello").await, Ok(5));
        assert_eq!(embed("hello").await, Ok(5));
        assert_eq!(render(3).await, Ok(3));
        assert_eq!(stock("A-1").await, Ok(3));
    });
    let config = hardened::rate_limiter("geocoder").config();
    assert_eq!((config.calls, config.period, config.burst), (60, Duration::from_secs(60), 5));
    assert_eq!(config.wait, Some(Duration::from_secs(2)));
    let limiter = hardened::rate_limiter("tenant_tokens");
    let config = limiter.config();
    assert_eq!((config.calls, config.period, config.max_keys), (600, Duration::from_secs(60), 500));
    // 5 tokens estimated, 12 used: the tenant's bucket was charged 7 more.
    assert_eq!(limiter.keys(), 1);
    let config = hardened::concurrency_limit("completions").config();
    assert_eq!((config.limit, config.wait), (hardened::concurrency::Limit::Fixed(3), Duration::from_millis(750)));
    let config = hardened::concurrency_limit("embeddings").config();
    let gradient = hardened::concurrency::Limit::Adaptive(hardened::concurrency::Algorithm::Gradient);
    assert_eq!((config.limit, config.wait, config.min, config.max), (gradient, Duration::from_secs(2), 2, 40));
    let config = hardened::bulkhead("renderer").config();
    assert_eq!((config.max, config.wait), (2, Some(Duration::from_millis(500))));
    let config = hardened::retry_policy("inventory").config();
    assert_eq!((config.attempts, config.backoff), (2, Duration::from_millis(1)));
    assert_eq!((config.max_backoff, config.jitter), (Duration::from_millis(4), false));
}
