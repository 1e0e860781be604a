//! Logs through `telemetry::init`'s global subscriber, for the log format tests, run as a child process
//! so that its standard output is a pipe and its environment its own.
//!
//! It writes one line inside a span (`inside`), then one outside (`outside`), to standard output, and
//! prints the span's `<trace_id> <span_id>` to standard error.

use hardened::telemetry::{self, TelemetryConfig};

fn main() {
    let _guard = telemetry::init(&TelemetryConfig::default()).expect("the only subscriber of this process");
    let ids = tracing::info_span!("request").in_scope(|| {
        tracing::info!(n = 1, "inside");
        telemetry::current_trace_ids().expect("the span has ids")
    });
    tracing::info!("outside");
    eprintln!("{} {}", ids.trace_id_hex(), ids.span_id_hex());
}
