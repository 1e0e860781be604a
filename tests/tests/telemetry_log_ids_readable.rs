//! Readable log lines name the trace of their span, with ids only (no exporter): under the global
//! subscriber, so alone in its binary.

use hardened::telemetry::LogFormat;
use hardened_tests::log_lines::{assert_readable_lines_name_their_trace, global_lines_with_ids};

#[test]
fn readable_lines_inside_a_span_end_with_its_trace_and_span_ids() {
    assert_readable_lines_name_their_trace(&global_lines_with_ids(LogFormat::Readable));
}
