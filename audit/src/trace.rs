//! Where the ids of the current trace come from: the telemetry layer registers a source, so that an
//! event recorded inside a traced call names its trace and span.

use std::sync::OnceLock;

/// The current trace and span, as W3C hex ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceIds {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
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
