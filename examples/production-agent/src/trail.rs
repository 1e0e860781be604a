//! The audit events the service records itself, beside those of `#[hardened(audit)]`: none in a build
//! with `--cfg hardened_disabled`, so that build measures the service without any of its instrumentation.

use hardened::audit::{self, AuditEvent, AuditOutcome};

/// Emits the event `make` builds; the event is not even built when the instrumentation is compiled out.
pub(crate) fn record(make: impl FnOnce() -> AuditEvent) {
    if !cfg!(hardened_disabled) {
        audit::emit(make());
    }
}

/// The outcome of an authorization decision.
pub(crate) fn decision(permitted: bool) -> AuditOutcome {
    if permitted { AuditOutcome::Success } else { AuditOutcome::Denied }
}
