//! What `#[hardened(audit)]` records of one call: an event when the call ends, however it ends.

use std::borrow::Cow;
use std::time::Instant;

use super::audited::{AuditRecord, Audited};
use super::event::{AuditEvent, AuditOutcome, EventType, bounds};
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
        let audit_outcome = AuditOutcome::from(outcome);
        let mut event = match self.record.take() {
            Some(record) => record.into_event(audit_outcome),
            None => AuditEvent::new(EventType::named(self.site.event)).outcome(audit_outcome),
        };
        event.resource = Some(Cow::Borrowed(self.site.function));
        let duration_ms = self.started.elapsed().as_secs_f64() * 1_000.0;
        // Looked up before inserting: `entry` would allocate its key even when the detail is there.
        if !event.details.contains_key("duration_ms") {
            event.details.insert("duration_ms".to_owned(), duration_ms.into());
        }
        if !event.details.contains_key("call_outcome") {
            event.details.insert("call_outcome".to_owned(), outcome.as_str().into());
        }
        event.outcome_details = match outcome {
            Outcome::Ok => None,
            Outcome::Error => message.map(recorded_message),
            Outcome::Cancelled => Some("cancelled before it completed".to_owned()),
            Outcome::Panic => Some("panicked".to_owned()),
            // `Outcome` may grow: an outcome this crate does not know yet is described by its name.
            _ => Some(message.map_or_else(|| outcome.as_str().to_owned(), recorded_message)),
        };
        super::emit(event);
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
