//! `#[hardened(audit)]`: one event per call, with the call's outcome, whatever the call did: returned,
//! failed, was refused by a guard, retried, panicked or was cancelled.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use hardened::audit::{AuditContext, AuditEvent, AuditOutcome, Auditor, EventType, MemorySink};
use hardened::{Audited, Rejected, hardened};

/// The process-wide pipeline of this test binary, into memory.
fn sink() -> &'static MemorySink {
    static SINK: OnceLock<MemorySink> = OnceLock::new();
    SINK.get_or_init(|| {
        let sink = MemorySink::new();
        let spill = std::env::temp_dir().join(format!("hardened-audit-attribute-{}", std::process::id()));
        let auditor = Auditor::builder().sink(sink.clone()).spill_dir(spill).start().expect("the pipeline starts");
        hardened::audit::install(auditor).expect("the first pipeline installed");
        sink
    })
}

/// The events recorded for `resource`, after writing out everything emitted so far.
async fn events_of(resource: &str) -> Vec<AuditEvent> {
    sink();
    hardened::audit::flush().await.expect("every event is written");
    sink()
        .events()
        .into_iter()
        .map(|sealed| sealed.event().clone())
        .filter(|event| event.resource.as_deref() == Some(resource))
        .collect()
}

fn events_of_blocking(resource: &str) -> Vec<AuditEvent> {
    tokio::runtime::Builder::new_current_thread().build().expect("a runtime").block_on(events_of(resource))
}

#[derive(Debug, thiserror::Error)]
enum ToolError {
    #[error("refused: {0}")]
    Refused(#[from] Rejected),
    #[error("the index is down")]
    Down,
}

#[hardened(kind = "tool", audit)]
fn lookup(key: u32) -> Result<u32, ToolError> {
    if key == 0 { Err(ToolError::Down) } else { Ok(key * 2) }
}

#[test]
fn a_tool_call_records_a_tool_execution_with_its_outcome_and_duration() {
    sink();
    assert_eq!(lookup(4).expect("a key above 0 is found"), 8);
    assert!(lookup(0).is_err());

    let events = events_of_blocking("lookup");
    assert_eq!(events.len(), 2, "one event per call");
    let (ok, failed) = (&events[0], &events[1]);
    assert_eq!(ok.event_type, EventType::ToolExecution);
    assert_eq!(ok.outcome, AuditOutcome::Success);
    assert_eq!(ok.outcome_details, None);
    assert_eq!(ok.details["call_outcome"], "ok");
    assert!(ok.details["duration_ms"].as_f64().expect("a number") >= 0.0);
    assert_eq!(failed.outcome, AuditOutcome::Failure);
    assert_eq!(failed.outcome_details.as_deref(), Some("the index is down"));
    assert_eq!(failed.details["call_outcome"], "error");
}

#[hardened(kind = "llm", audit(event = "AgentResponse"))]
async fn answer(prompt: &str) -> Result<String, ToolError> {
    Ok(prompt.to_uppercase())
}

#[tokio::test]
async fn an_event_type_can_be_named_and_the_actor_comes_from_the_scope() {
    sink();
    let context = AuditContext::user("ada").session("s-9").ip("198.51.100.4".parse().expect("a valid address"));
    hardened::audit::scope(context, async { answer("hi").await.expect("an answer") }).await;

    let events = events_of("answer").await;
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event.event_type, EventType::AgentResponse);
    assert_eq!(event.user_id.as_deref(), Some("ada"));
    assert_eq!(event.session_id.as_deref(), Some("s-9"));
    assert_eq!(event.ip_address, Some("198.51.100.4".parse().expect("a valid address")));
}

#[derive(Debug, Clone, serde::Serialize, Audited)]
enum Action {
    #[audited(event = "UserMessage")]
    Say {
        #[audited(user_id)]
        author: String,
        #[audited(redact)]
        text: String,
    },
    Reset,
}

#[derive(Debug, Default)]
struct State {
    messages: usize,
}

#[hardened(kind = "reducer", audit = action)]
fn reduce(state: &mut State, action: Action) -> Result<(), ToolError> {
    match action {
        Action::Say { .. } => state.messages += 1,
        Action::Reset => return Err(ToolError::Down),
    }
    Ok(())
}

#[test]
fn an_audited_argument_is_recorded_with_the_outcome_of_the_call() {
    sink();
    let mut state = State::default();
    reduce(&mut state, Action::Say { author: "grace".into(), text: "the launch code is xyzzy".into() })
        .expect("saying succeeds");
    reduce(&mut state, Action::Reset).expect_err("the call fails");
    assert_eq!(state.messages, 1);

    let events = events_of_blocking("reduce");
    assert_eq!(events.len(), 2);
    let said = &events[0];
    assert_eq!(said.event_type, EventType::UserMessage);
    assert_eq!(said.user_id.as_deref(), Some("grace"));
    assert_eq!(said.details["text"], hardened::audit::REDACTED);
    assert_eq!(said.outcome, AuditOutcome::Success);
    assert!(!serde_json::to_string(said).expect("an event serializes").contains("xyzzy"));
    let reset = &events[1];
    assert_eq!(reset.event_type, EventType::Custom("Reset".into()));
    assert_eq!(reset.outcome, AuditOutcome::Failure);
}

#[hardened(kind = "tool", rate = 1, burst = 1, audit)]
fn once_per_second() -> Result<(), ToolError> {
    Ok(())
}

#[test]
fn a_call_refused_by_a_guard_is_denied() {
    sink();
    once_per_second().expect("the first call is admitted");
    let refused = once_per_second().expect_err("the call fails");
    assert!(matches!(refused, ToolError::Refused(Rejected::RateLimited { .. })));

    let events = events_of_blocking("once_per_second");
    let outcomes: Vec<AuditOutcome> = events.iter().map(|event| event.outcome).collect();
    assert_eq!(outcomes, [AuditOutcome::Success, AuditOutcome::Denied]);
    assert_eq!(events[1].details["call_outcome"], "rejected");
    assert!(
        events[1].outcome_details.as_deref().expect("a reason").starts_with("refused: "),
        "{:?}",
        events[1].outcome_details
    );
}

static ATTEMPTS: Mutex<u32> = Mutex::new(0);

#[hardened(kind = "tool", retry(attempts = 3, backoff = "1ms", jitter = false), audit)]
async fn flaky() -> Result<u32, ToolError> {
    let mut attempts = ATTEMPTS.lock().expect("no test panicked holding it");
    *attempts += 1;
    if *attempts < 3 { Err(ToolError::Down) } else { Ok(*attempts) }
}

#[tokio::test]
async fn a_retried_call_is_one_event() {
    sink();
    assert_eq!(flaky().await.expect("the third attempt succeeds"), 3);
    let events = events_of("flaky").await;
    assert_eq!(events.len(), 1, "one event for the call, not one per attempt");
    assert_eq!(events[0].outcome, AuditOutcome::Success);
}

#[hardened(kind = "tool", audit)]
fn explode() -> Result<(), ToolError> {
    panic!("boom")
}

#[test]
fn a_panic_is_recorded_as_a_failure() {
    sink();
    let panicked = std::panic::catch_unwind(explode);
    assert!(panicked.is_err());
    let events = events_of_blocking("explode");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].outcome, AuditOutcome::Failure);
    assert_eq!(events[0].details["call_outcome"], "panic");
    assert_eq!(events[0].outcome_details.as_deref(), Some("panicked"));
}

#[hardened(kind = "tool", audit)]
async fn never_ready() -> Result<(), ToolError> {
    std::future::pending::<()>().await;
    Ok(())
}

#[tokio::test]
async fn a_cancelled_call_is_recorded_as_a_failure() {
    sink();
    let cancelled = tokio::time::timeout(Duration::from_millis(1), never_ready()).await;
    assert!(cancelled.is_err());
    let events = events_of("never_ready").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].outcome, AuditOutcome::Failure);
    assert_eq!(events[0].details["call_outcome"], "cancelled");
}

struct Store(usize);

#[hardened(kind = "tool", audit)]
impl Store {
    fn put(&self, key: &str) -> Result<usize, ToolError> {
        Ok(key.len())
    }

    #[hardened(skip)]
    fn peek(&self) -> usize {
        self.0
    }
}

#[test]
fn every_method_of_an_annotated_impl_block_is_audited() {
    sink();
    assert_eq!(Store(0).put("abc").expect("a put succeeds"), 3);
    assert_eq!(Store(0).peek(), 0);
    assert_eq!(events_of_blocking("put").len(), 1);
    assert!(events_of_blocking("peek").is_empty());
}

#[async_trait::async_trait]
trait Reducer {
    async fn apply(&self, action: Action) -> Result<(), ToolError>;
}

struct Remote;

#[async_trait::async_trait]
impl Reducer for Remote {
    #[hardened(kind = "reducer", name = "remote_apply", audit = action)]
    async fn apply(&self, action: Action) -> Result<(), ToolError> {
        match action {
            Action::Reset => Err(ToolError::Down),
            Action::Say { .. } => Ok(()),
        }
    }
}

#[tokio::test]
async fn async_trait_methods_are_audited_too() {
    sink();
    Remote.apply(Action::Reset).await.expect_err("the call fails");
    let events = events_of("remote_apply").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, EventType::Custom("Reset".into()));
    assert_eq!(events[0].outcome, AuditOutcome::Failure);
}

#[hardened(kind = "tool", audit)]
fn archive() -> Result<(), ToolError> {
    Ok(())
}

#[tokio::test]
async fn the_installed_pipeline_flushes_at_shutdown() {
    sink();
    archive().expect("archiving succeeds");
    let reports = hardened::shutdown::run_handlers().await;
    let flush = reports.iter().find(|report| report.name == "audit flush").expect("the audit flush is registered");
    assert!(flush.outcome.is_done(), "{flush}");
    let written = sink().events().iter().filter(|sealed| sealed.event().resource.as_deref() == Some("archive")).count();
    assert_eq!(written, 1, "written by the shutdown handler, before any other flush");
}

#[tokio::test]
async fn a_breaker_that_changes_state_is_an_audit_event() {
    sink();
    let breaker = hardened::breaker("audited_breaker");
    breaker.force_open();
    breaker.close();
    let seen: Vec<(EventType, String, String)> = events_of("breaker/audited_breaker")
        .await
        .into_iter()
        .map(|event| (event.event_type, event.details["from"].to_string(), event.details["to"].to_string()))
        .collect();
    let transition = |from: &str, to: &str| (EventType::GuardTransition, format!("\"{from}\""), format!("\"{to}\""));
    assert_eq!(seen, [transition("closed", "forced_open"), transition("forced_open", "closed")]);
}
