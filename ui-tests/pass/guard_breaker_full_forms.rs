//! `breaker(..)` with every setting, and with `consecutive_failures`: the settings reach the breaker and
//! an open breaker refuses calls without running them.
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use hardened::breaker::WindowKind;
use hardened::{BreakerState, Rejected, hardened};

#[derive(Debug, PartialEq, thiserror::Error)]
enum LlmError {
    #[error(transparent)]
    Refused(#[from] Rejected),
    #[error("the model is overloaded")]
    Overloaded,
}

#[hardened(breaker(
    name = "llm",
    failure_rate = 40,
    slow_rate = 80,
    slow_call = "2s",
    window = 20,
    window_kind = "count",
    min_calls = 5,
    open_for = "1m",
    half_open_calls = 2,
))]
fn complete(ok: bool) -> Result<&'static str, LlmError> {
    if ok { Ok("done") } else { Err(LlmError::Overloaded) }
}

#[hardened(breaker(name = "embeddings", window = 30, window_kind = "time"))]
fn embed(text: &str) -> Result<usize, LlmError> {
    Ok(text.len())
}

#[hardened(breaker(consecutive_failures = 5))]
fn flaky(runs: &AtomicU32) -> Result<u32, LlmError> {
    runs.fetch_add(1, Ordering::Relaxed);
    Err(LlmError::Overloaded)
}

fn main() {
    // 3 successes and 2 failures: 40% of 5 calls, which reaches `failure_rate` once `min_calls` are in.
    for ok in [true, true, false, true, false] {
        assert_eq!(complete(ok).is_ok(), ok);
    }
    assert_eq!(complete(true), Err(LlmError::Refused(Rejected::CircuitOpen { name: "llm" })));
    let llm = hardened::breaker("llm");
    assert_eq!(llm.state(), BreakerState::Open);
    let config = llm.config();
    assert_eq!((config.failure_rate, config.slow_rate, config.slow_call), (40, 80, Duration::from_secs(2)));
    assert_eq!((config.window, config.window_kind, config.min_calls), (20, WindowKind::Count, 5));
    assert_eq!((config.open_for, config.half_open_calls), (Duration::from_mins(1), 2));
    assert_eq!(config.consecutive_failures, None);

    assert_eq!(embed("hello"), Ok(5));
    let config = hardened::breaker("embeddings").config();
    assert_eq!((config.window, config.window_kind), (30, WindowKind::Time));

    let runs = AtomicU32::new(0);
    for _ in 0..5 {
        assert_eq!(flaky(&runs), Err(LlmError::Overloaded));
    }
    assert!(matches!(flaky(&runs), Err(LlmError::Refused(Rejected::CircuitOpen { .. }))));
    assert_eq!(runs.load(Ordering::Relaxed), 5, "a refused call does not run");
    let site = hardened::sites().iter().find(|site| site.function() == "flaky").expect("registered");
    let breaker = site.guards().and_then(|guards| guards.breaker()).expect("a breaker");
    assert_eq!(breaker.config().consecutive_failures, Some(5));
    assert_eq!(breaker.counts().not_permitted, 1);
}
