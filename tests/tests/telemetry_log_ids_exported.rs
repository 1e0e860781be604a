//! JSON log lines name the trace of their span, with spans made by the SDK's tracer (as when they are
//! exported): under the global subscriber, so alone in its binary.

use hardened::telemetry::{self, LogFormat};
use hardened_tests::log_lines::{Lines, assert_json_lines_name_their_trace};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt as _;

#[test]
fn json_lines_inside_an_exported_span_start_with_its_trace_and_span_ids() {
    let lines = Lines::default();
    let provider = SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(telemetry::log_layer(LogFormat::Json, lines.clone()))
        .with(telemetry::otel_layer(&provider));
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber of this binary");
    assert_json_lines_name_their_trace(&lines);
}
