//! What the future of a guarded call holds: the function's own future once, and the guards' state beside
//! it, however many guards and retries wrap it. A future handed to a guard by value and then awaited is
//! held twice, and again by each guard around it; every move of the call's future (into a task, into a
//! boxed handler) copies all of it, and every call in flight keeps all of it in memory.

use std::future::Future;

use hardened::audit::{self, AuditContext, AuditEvent, EventType};
use hardened::{Rejected, hardened};

/// The most bytes the guards of one function may add to its future: timeout, permits, retry state and
/// the span.
const GUARDS_STATE: usize = 1024;

/// The body of every function below: a future of more than 8 KiB, a buffer held across an await.
async fn large_body(index: u8) -> Result<u8, Rejected> {
    let buffer = [index; 8192];
    tokio::task::yield_now().await;
    Ok(buffer[usize::from(index)])
}

#[hardened(timeout = "1s")]
async fn with_timeout(index: u8) -> Result<u8, Rejected> {
    large_body(index).await
}

#[hardened(timeout = "1s", retry(attempts = 2, backoff = "1ms"))]
async fn with_retries(index: u8) -> Result<u8, Rejected> {
    large_body(index).await
}

#[hardened(
    breaker = "future_sizes",
    rate(name = "future_sizes", per_second = 1000, burst = 1000),
    bulkhead = 4,
    timeout = "1s",
    retry(attempts = 2, backoff = "1ms")
)]
async fn with_every_guard(index: u8) -> Result<u8, Rejected> {
    large_body(index).await
}

#[hardened(hedge(after = "50ms", max = 1))]
async fn hedged(index: u8) -> Result<u8, Rejected> {
    large_body(index).await
}

/// A guarded function calling another: the guards of both around one body.
#[hardened(timeout = "2s", retry(attempts = 2, backoff = "1ms"))]
async fn nested(index: u8) -> Result<u8, Rejected> {
    with_every_guard(index).await
}

fn size_of_future<F: Future>(future: &F) -> usize {
    size_of_val(future)
}

#[test]
fn a_guarded_call_holds_its_body_once() {
    let body = size_of_future(&large_body(1));
    let calls = [
        ("timeout", size_of_future(&with_timeout(1)), 1),
        ("retries", size_of_future(&with_retries(1)), 1),
        ("every guard", size_of_future(&with_every_guard(1)), 1),
        ("nested", size_of_future(&nested(1)), 2),
    ];
    for (call, size, functions) in calls {
        assert!(
            size <= body + functions * GUARDS_STATE,
            "the future of a call with {call} is {size} bytes, for a body of {body}: the body is held more than once"
        );
    }
}

#[test]
fn a_hedged_call_keeps_its_attempts_out_of_its_own_future() {
    // Hedged attempts run side by side, each boxed: the call's own future holds none of them.
    let body = size_of_future(&large_body(1));
    let size = size_of_future(&hedged(1));
    assert!(size < body, "the future of a hedged call is {size} bytes, for attempts of {body}");
}

#[test]
fn an_audit_scope_holds_its_future_once() {
    let body = size_of_future(&large_body(1));
    let size = size_of_future(&audit::scope(AuditContext::user("ada"), large_body(1)));
    assert!(size <= body + 256, "an audit scope's future is {size} bytes, for a future of {body}");
}

#[tokio::test]
async fn the_guarded_calls_still_answer() {
    assert_eq!(with_timeout(3).await.expect("answers"), 3);
    assert_eq!(with_retries(4).await.expect("answers"), 4);
    assert_eq!(with_every_guard(5).await.expect("answers"), 5);
    assert_eq!(nested(6).await.expect("answers"), 6);
    assert_eq!(hedged(7).await.expect("answers"), 7);
    let event = audit::scope(AuditContext::user("ada"), async { AuditEvent::new(EventType::UserMessage) }).await;
    assert_eq!(event.user_id.as_deref(), Some("ada"));
}
