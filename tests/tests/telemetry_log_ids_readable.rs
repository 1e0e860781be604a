//! Readable log lines name the trace of their span, with ids only (no exporter): under the global
//! subscriber, so alone in its binary.

use hardened::telemetry::{self, LogFormat, TelemetryConfig};
use hardened_tests::log_lines::{Lines, assert_readable_lines_name_their_trace};
use tracing_subscriber::layer::SubscriberExt as _;

#[test]
fn readable_lines_inside_a_span_end_with_its_trace_and_span_ids() {
    let lines = Lines::default();
    let subscriber = tracing_subscriber::registry()
        .with(telemetry::log_layer(LogFormat::Readable, lines.clone()))
        .with(telemetry::trace_ids_layer(&TelemetryConfig::default()));
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber of this binary");
    assert_readable_lines_name_their_trace(&lines);
}
