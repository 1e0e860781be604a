//! Guard events: a subscriber sees breaker transitions, refusals by every guard, timeouts, retries and
//! limit changes, each with its guard, name and function; one that falls behind is told how many it missed.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use hardened::concurrency::ConcurrencyConfig;
use hardened::events::{GuardEvent, GuardEventKind, GuardEvents};
use hardened::{Rejected, hardened};

#[derive(Debug, PartialEq, thiserror::Error)]
enum AppError {
    #[error("refused: {0}")]
    Refused(#[from] Rejected),
    #[error("the dependency failed")]
    Failed,
}

/// The next event about the guard called `name`: the tests of this file run at once and share the stream.
async fn next_about(events: &mut GuardEvents, name: &str) -> GuardEvent {
    loop {
        let event = events.recv().await.expect("nothing missed");
        if event.name == name {
            return event;
        }
    }
}

#[hardened(breaker(name = "events_breaker", consecutive_failures = 1))]
async fn fragile(fail: bool) -> Result<(), AppError> {
    if fail { Err(AppError::Failed) } else { Ok(()) }
}

#[tokio::test]
async fn a_breaker_that_opens_and_the_call_it_refuses_are_events() {
    let mut events = hardened::events();
    assert_eq!(fragile(true).await, Err(AppError::Failed));
    let opened = next_about(&mut events, "events_breaker").await;
    assert_eq!((opened.guard, opened.function), ("breaker", None));
    assert_eq!(opened.kind, GuardEventKind::Transition { from: "closed", to: "open" });

    let refusal = Rejected::CircuitOpen { name: "events_breaker" };
    assert_eq!(fragile(false).await, Err(AppError::Refused(refusal.clone())));
    let refused = next_about(&mut events, "events_breaker").await;
    assert_eq!((refused.guard, refused.function), ("breaker", Some("fragile")));
    assert_eq!(refused.kind, GuardEventKind::Refused { rejected: refusal });
    assert!(refused.at >= opened.at);
}

#[hardened(timeout = "1s")]
async fn stalls() -> Result<(), AppError> {
    std::future::pending().await
}

#[tokio::test(start_paused = true)]
async fn a_timeout_is_an_event_named_after_its_function() {
    let mut events = hardened::events();
    let timed_out = Rejected::TimedOut { after: Duration::from_secs(1) };
    assert_eq!(stalls().await, Err(AppError::Refused(timed_out.clone())));
    let event = next_about(&mut events, "stalls").await;
    assert_eq!((event.guard, event.function), ("timeout", Some("stalls")));
    assert_eq!(event.kind, GuardEventKind::Refused { rejected: timed_out });
}

#[hardened(retry(name = "events_retry", attempts = 2, backoff = "10ms", jitter = false))]
async fn always_fails(attempts: &AtomicU32) -> Result<(), AppError> {
    attempts.fetch_add(1, Ordering::SeqCst);
    Err(AppError::Failed)
}

#[tokio::test(start_paused = true)]
async fn each_retry_is_an_event_with_its_backoff() {
    let mut events = hardened::events();
    let attempts = AtomicU32::new(0);
    assert_eq!(always_fails(&attempts).await, Err(AppError::Failed));
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    for (retry, delay) in [(1, 10), (2, 20)] {
        let event = next_about(&mut events, "events_retry").await;
        assert_eq!((event.guard, event.function), ("retry", Some("always_fails")));
        assert_eq!(event.kind, GuardEventKind::Retry { retry, delay: Duration::from_millis(delay) });
    }
}

#[tokio::test]
async fn a_retuned_limit_is_an_event_and_an_unchanged_one_is_not() {
    let limit = hardened::concurrency_limit("events_limit");
    limit.retune(&ConcurrencyConfig::new(4));
    let mut events = hardened::events();
    limit.retune(&ConcurrencyConfig::new(4));
    limit.retune(&ConcurrencyConfig::new(8));
    let event = next_about(&mut events, "events_limit").await;
    assert_eq!((event.guard, event.function), ("concurrency", None));
    assert_eq!(event.kind, GuardEventKind::LimitChanged { from: 4, to: 8 });
}

#[test]
fn nothing_waits_for_a_subscriber() {
    let mut events = hardened::events();
    assert_eq!(events.try_recv(), Ok(None));
}
