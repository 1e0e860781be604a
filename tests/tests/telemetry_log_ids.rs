//! JSON log lines name the trace of their span, with ids only (no exporter): under the global
//! subscriber, so alone in its binary.

use hardened::telemetry::LogFormat;
use hardened_tests::log_lines::{assert_json_lines_name_their_trace, global_lines_with_ids};

#[test]
fn json_lines_inside_a_span_start_with_its_trace_and_span_ids() {
    assert_json_lines_name_their_trace(&global_lines_with_ids(LogFormat::Json));
}
