//! Where the ids of the current trace come from: the telemetry layer registers a source, so that an
//! event recorded inside a traced call names its trace and span.

use std::sync::OnceLock;

/// The current trace and span, as the bytes of their W3C ids: an event writes them in hex when it is
/// made, or, for a call's event, when the writer's thread completes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceIds {
    /// The trace id's 16 bytes.
    pub trace_id: [u8; 16],
    /// The span id's 8 bytes.
    pub span_id: [u8; 8],
}

impl TraceIds {
    /// The trace id as 32 lowercase hex digits, as an event records it.
    #[must_use]
    pub fn trace_id_hex(&self) -> String {
        hardened_core::support::hex(&self.trace_id)
    }

    /// The span id as 16 lowercase hex digits, as an event records it.
    #[must_use]
    pub fn span_id_hex(&self) -> String {
        hardened_core::support::hex(&self.span_id)
    }
}

static SOURCE: OnceLock<fn() -> Option<TraceIds>> = OnceLock::new();

/// Registers where events read the current trace from. The first registration wins; telemetry
/// initialisation makes it, and an application with its own tracing integration may make it instead.
pub fn set_trace_source(source: fn() -> Option<TraceIds>) -> bool {
    SOURCE.set(source).is_ok()
}

/// The current trace, if a source is registered and a trace is current.
pub(crate) fn current() -> Option<TraceIds> {
    SOURCE.get().and_then(|source| source())
}
