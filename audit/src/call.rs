//! What `#[hardened(audit)]` records of one call: an event when the call ends, however it ends.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::audited::{AuditRecord, Audited};
use super::context::{self, AuditContext};
use super::event::{AuditEvent, AuditOutcome, EventType, bounds};
use super::trace::TraceIds;
use hardened_core::outcome::Outcome;

/// An audited function, as the macro describes it.
#[derive(Debug)]
pub struct AuditSite {
    /// The function's name (the `function` label), written as the event's `resource`.
    pub function: &'static str,
    /// The event type of `audit` and `audit(event = "..")`; unused with `audit = arg`, whose value
    /// names its own.
    pub event: &'static str,
}

/// One audited call in progress. Dropped without [`AuditCall::finish`], it records a failure: a panic
/// while the thread unwinds, a cancellation otherwise.
#[derive(Debug)]
#[must_use = "an audited call that is dropped is recorded as cancelled"]
pub struct AuditCall {
    site: &'static AuditSite,
    record: Option<AuditRecord>,
    started: Instant,
    finished: bool,
}

impl AuditCall {
    /// Starts the call; `record` is the event an `audit = arg` argument describes.
    pub fn start(site: &'static AuditSite, record: Option<AuditRecord>) -> AuditCall {
        AuditCall { site, record, started: Instant::now(), finished: false }
    }

    /// Records the call's outcome, with the error's message for a failure (its URLs' secrets masked, cut
    /// to [`AuditEvent::MAX_TEXT_BYTES`]).
    pub fn finish(mut self, outcome: Outcome, message: Option<String>) {
        self.finished = true;
        self.emit(outcome, message);
    }

    fn emit(&mut self, outcome: Outcome, message: Option<String>) {
        super::emit_call(self.event(outcome, message));
    }

    /// What the call's thread knows of the call's event.
    fn event(&mut self, outcome: Outcome, message: Option<String>) -> CallEvent {
        CallEvent {
            id: Uuid::now_v7(),
            timestamp: super::event::now(),
            record: self.record.take().unwrap_or_else(|| AuditRecord::new(EventType::named(self.site.event))),
            function: self.site.function,
            scope: context::shared(),
            trace: super::trace::current(),
            outcome,
            message,
            duration_ms: self.started.elapsed().as_secs_f64() * 1_000.0,
        }
    }
}

/// A call's event as the call's thread leaves it: what is known there (when, which trace, which scope,
/// how it ended), with the strings its record copies (the trace ids in hex, the scope's actor, the
/// call's details and outcome) still to make. The audit writer's thread makes them when it takes the event, so that
/// they are allocated and freed by the one thread: made on the call's thread, each would be freed on
/// the writer's, which costs both threads more than making it.
#[derive(Debug)]
pub(crate) struct CallEvent {
    id: Uuid,
    timestamp: DateTime<Utc>,
    /// The event the call's `audit = arg` argument describes, or a plain one of the site's type: its
    /// details, to which the call's own are added, and its actor fields, those it lacks being the scope's.
    record: AuditRecord,
    function: &'static str,
    scope: Option<Arc<AuditContext>>,
    trace: Option<TraceIds>,
    outcome: Outcome,
    /// The error's message, for a failure.
    message: Option<String>,
    duration_ms: f64,
}

impl CallEvent {
    /// The event, as [`AuditEvent::new`] would have made it on the call's thread.
    pub(crate) fn into_event(self) -> AuditEvent {
        let (event_type, details, actor) = self.record.into_parts();
        let actor = match &self.scope {
            Some(scope) => actor.or_from(scope),
            None => actor,
        };
        let outcome = self.outcome;
        let mut event = AuditEvent::made(self.id, self.timestamp, event_type, actor, self.trace);
        event.outcome = AuditOutcome::from(outcome);
        event.outcome_details = match outcome {
            Outcome::Ok => None,
            Outcome::Error => self.message.map(recorded_message),
            Outcome::Cancelled => Some("cancelled before it completed".to_owned()),
            Outcome::Panic => Some("panicked".to_owned()),
            // `Outcome` may grow: an outcome this crate does not know yet is described by its name.
            _ => Some(self.message.map_or_else(|| outcome.as_str().to_owned(), recorded_message)),
        };
        event.resource = Some(Cow::Borrowed(self.function));
        event.details = details;
        // Looked up before inserting: `entry` would allocate its key even when the detail is there.
        if !event.details.contains_key("duration_ms") {
            event.details.insert("duration_ms".to_owned(), self.duration_ms.into());
        }
        if !event.details.contains_key("call_outcome") {
            event.details.insert("call_outcome".to_owned(), outcome.as_str().into());
        }
        event
    }
}

/// An error's message as the event records it: the secrets of its URLs masked, then cut to its bound
/// (in this order, so that a cut cannot leave half a URL that the masking no longer recognises).
fn recorded_message(message: String) -> String {
    let mut message = match hardened_core::redact::urls(&message) {
        Cow::Borrowed(_) => message,
        Cow::Owned(redacted) => redacted,
    };
    bounds::bound_string(&mut message, bounds::MAX_TEXT_BYTES);
    message
}

impl Drop for AuditCall {
    fn drop(&mut self) {
        if !self.finished {
            let outcome = if std::thread::panicking() { Outcome::Panic } else { Outcome::Cancelled };
            self.emit(outcome, None);
        }
    }
}

/// A call's outcome as an audit outcome: a refusal by a guard is a denial, any other end but success a
/// failure.
impl From<Outcome> for AuditOutcome {
    fn from(outcome: Outcome) -> AuditOutcome {
        match outcome {
            Outcome::Ok => AuditOutcome::Success,
            Outcome::Rejected => AuditOutcome::Denied,
            // `Outcome` may grow: any other end is a failure.
            _ => AuditOutcome::Failure,
        }
    }
}

/// The event an `audit = arg` argument describes, read before the call can consume the argument.
pub fn audit_record<T: Audited + ?Sized>(value: &T) -> AuditRecord {
    value.audit_record()
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    static SITE: AuditSite = AuditSite { function: "lookup", event: "ToolExecution" };

    /// The event a call of [`SITE`] leaves for the writer, ended with `outcome`, inside `scope` if any.
    fn call_event(record: Option<AuditRecord>, scope: Option<AuditContext>, outcome: Outcome) -> CallEvent {
        let end = || {
            let mut call = AuditCall::start(&SITE, record);
            // Ended here: dropped unfinished, it would record itself on the process-wide pipeline.
            call.finished = true;
            call.event(outcome, Some("no such key".to_owned()))
        };
        match scope {
            Some(scope) => crate::sync_scope(scope, end),
            None => end(),
        }
    }

    #[test]
    fn a_call_event_is_completed_as_the_calls_thread_would_have_made_it() {
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let mut call = call_event(None, Some(AuditContext::user("ada").session("s-1").ip(ip)), Outcome::Rejected);
        call.trace = Some(TraceIds { trace_id: [0xab; 16], span_id: [0x01; 8] });
        let (id, timestamp) = (call.id, call.timestamp);
        let event = call.into_event();
        assert_eq!((event.id, event.timestamp), (id, timestamp), "made when the call ended");
        assert_eq!(event.event_type, EventType::ToolExecution);
        assert_eq!(event.resource.as_deref(), Some("lookup"));
        assert_eq!(event.outcome, AuditOutcome::Denied);
        assert_eq!((event.user_id.as_deref(), event.session_id.as_deref()), (Some("ada"), Some("s-1")));
        assert_eq!(event.ip_address, Some(ip));
        assert_eq!(event.trace_id.as_deref(), Some("abababababababababababababababab"));
        assert_eq!(event.span_id.as_deref(), Some("0101010101010101"));
        assert!(event.details["duration_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{:?}", event.details);
        assert_eq!(event.details["call_outcome"], "rejected");
        assert_eq!(event.service, crate::service_name());
    }

    #[test]
    fn the_records_actor_and_details_win_over_the_scope_and_the_calls() {
        let mut record = AuditRecord::new(EventType::UserMessage);
        record.user_id = Some("grace".to_owned());
        record.details.insert("call_outcome".to_owned(), "the record's".into());
        let event = call_event(Some(record), Some(AuditContext::user("ada").session("s-1")), Outcome::Ok).into_event();
        assert_eq!(event.event_type, EventType::UserMessage);
        assert_eq!(event.user_id.as_deref(), Some("grace"), "the record's own");
        assert_eq!(event.session_id.as_deref(), Some("s-1"), "what the record lacks, from the scope");
        assert_eq!(event.details["call_outcome"], "the record's");
        assert!(event.details.contains_key("duration_ms"));
        assert_eq!((event.outcome, event.outcome_details), (AuditOutcome::Success, None));

        let outside = call_event(None, None, Outcome::Error).into_event();
        assert_eq!((outside.user_id, outside.session_id, outside.ip_address), (None, None, None));
        assert_eq!(outside.outcome, AuditOutcome::Failure);
        assert_eq!(outside.outcome_details.as_deref(), Some("no such key"));
    }

    #[test]
    fn a_call_holds_the_scopes_actor_rather_than_a_copy() {
        crate::sync_scope(AuditContext::user("ada").session("s-1"), || {
            let call = call_event(None, None, Outcome::Ok);
            let scope = context::shared().expect("inside a scope");
            let held = call.scope.as_ref().expect("the call's scope");
            assert!(Arc::ptr_eq(held, &scope), "the scope's actor itself, made into strings by the writer");
        });
    }
}
