//! The guards of one model call, as `agent-server`'s `spend_tokens` and `call_model` declare them (a
//! token budget keyed by the caller's key, then a breaker, a rate limit, a concurrency limit, a timeout
//! and retries), around a model that answers at once, without their spans and metrics (measured in
//! `span/*` and `metrics/call`): `guards/model_call`, against the same two calls unguarded,
//! `guards/bare`. Their limits are out of reach, so every call takes the allowed path.

use std::hint::black_box;
use std::task::{Context, Poll, Waker};

use criterion::Criterion;
use hardened::{Rejected, hardened};

/// A model call's failure.
#[derive(Debug)]
enum ModelError {
    Unreachable,
    Refused,
}

impl ModelError {
    fn is_transient(&self) -> bool {
        matches!(self, ModelError::Unreachable)
    }
}

impl From<Rejected> for ModelError {
    fn from(_: Rejected) -> ModelError {
        ModelError::Refused
    }
}

/// The model: an answer at once (a failure for no prompt, which the benchmark never sends).
#[allow(clippy::unused_async, reason = "a model call is async; this one answers at once")]
async fn model(prompt: &str) -> Result<usize, ModelError> {
    match black_box(prompt).len() {
        0 => Err(ModelError::Unreachable),
        length => Ok(length),
    }
}

#[hardened(
    kind = "llm",
    span = false,
    metrics = false,
    rate(name = "bench_tokens", per_minute = 1_000_000_000, key = key_name, cost = 100_u64)
)]
async fn spend_tokens(key_name: &str, prompt: &str) -> Result<usize, ModelError> {
    call_model(prompt).await
}

#[hardened(
    kind = "llm",
    span = false,
    metrics = false,
    breaker = "bench_llm",
    rate(name = "bench_llm", per_second = 1_000_000_000, burst = 1_000_000_000),
    concurrency(name = "bench_llm", limit = 64, wait = "10s"),
    timeout = "30s",
    retry(attempts = 2, backoff = "200ms", max_backoff = "2s", when = ModelError::is_transient)
)]
async fn call_model(prompt: &str) -> Result<usize, ModelError> {
    model(prompt).await
}

async fn unguarded(key_name: &str, prompt: &str) -> Result<usize, ModelError> {
    black_box(key_name);
    model(prompt).await
}

/// Polls `future` once, where it is: every call here is ready at once.
fn ready<T>(future: impl Future<Output = T>) -> T {
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(value) => value,
        Poll::Pending => panic!("an unlimited guard and a ready model do not wait"),
    }
}

pub(crate) fn bench(c: &mut Criterion, runtime: &tokio::runtime::Runtime) {
    let mut group = c.benchmark_group("guards");
    // Inside the runtime, as the server's calls are: the timeout needs its timer.
    let _inside = runtime.enter();
    group.bench_function("bare", |b| b.iter(|| ready(unguarded(black_box("developer"), "2 + 3 * 4")).is_ok()));
    group.bench_function("model_call", |b| {
        b.iter(|| ready(spend_tokens(black_box("developer"), "2 + 3 * 4")).is_ok());
    });
    group.finish();
}
