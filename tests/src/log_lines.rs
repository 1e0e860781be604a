//! Log lines written to memory, for a log layer under test.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use hardened::audit::TraceIds;
use hardened::telemetry::{self, LogFormat, TelemetryConfig};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;

/// Log lines written to memory; clones write to the same lines.
#[derive(Debug, Clone, Default)]
pub struct Lines(Arc<Mutex<Vec<u8>>>);

impl Lines {
    /// Everything written so far.
    ///
    /// # Panics
    ///
    /// If what was written is not UTF-8.
    #[must_use]
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()).expect("UTF-8 lines")
    }
}

impl Write for Lines {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'writer> MakeWriter<'writer> for Lines {
    type Writer = Lines;

    fn make_writer(&'writer self) -> Lines {
        self.clone()
    }
}

/// Installs the global subscriber: a log layer of `format` writing to the lines returned, and spans with
/// OpenTelemetry ids only, as `telemetry::init` gives them without an exporter.
///
/// # Panics
///
/// When the global subscriber is already set: call it once, in a test binary of its own.
#[must_use]
pub fn global_lines_with_ids(format: LogFormat) -> Lines {
    let lines = Lines::default();
    let subscriber = tracing_subscriber::registry()
        .with(telemetry::log_layer(format, lines.clone()))
        .with(telemetry::trace_ids_layer(&TelemetryConfig::default()));
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber of this binary");
    lines
}

/// Logs four lines under the global subscriber, which writes to `lines` and gives spans OpenTelemetry
/// ids: one before any span, one in a span, one in a span inside it, one after. Returns the four lines
/// and the ids of the two spans, checked to be one trace and two spans.
///
/// # Panics
///
/// When there are not four lines, or the spans have no ids.
fn log_in_and_out_of_spans(lines: &Lines) -> (Vec<String>, TraceIds, TraceIds) {
    tracing::info!("before any span");
    let (outer, inner) = tracing::info_span!("request").in_scope(|| {
        tracing::info!(n = 1, "inside");
        let outer = hardened::telemetry::current_trace_ids().expect("the span has ids");
        let inner = tracing::info_span!("tool").in_scope(|| {
            tracing::info!("nested");
            hardened::telemetry::current_trace_ids().expect("the span has ids")
        });
        (outer, inner)
    });
    tracing::info!("after it");

    let text = lines.text();
    let written: Vec<String> = text.lines().map(str::to_owned).collect();
    assert_eq!(written.len(), 4, "{text}");
    assert_eq!(outer.trace_id, inner.trace_id, "one trace");
    assert_ne!(outer.span_id, inner.span_id);
    (written, outer, inner)
}

/// Logs four JSON lines under a global subscriber that writes to `lines` and gives spans OpenTelemetry
/// ids (as the one of [`global_lines_with_ids`] does): one before any span, one in a span, one in a span
/// inside it, one after. Checks that the two inside a span start with their span's `trace_id` and
/// `span_id` and that the two outside carry neither.
///
/// # Panics
///
/// When a line is not as described.
pub fn assert_json_lines_name_their_trace(lines: &Lines) {
    let (lines, outer, inner) = log_in_and_out_of_spans(lines);
    for (line, ids) in [(&lines[1], &outer), (&lines[2], &inner)] {
        let first = format!(r#"{{"trace_id":"{}","span_id":"{}","#, ids.trace_id_hex(), ids.span_id_hex());
        assert!(line.starts_with(&first), "{first} in {line}");
    }
    let inside: serde_json::Value = serde_json::from_str(&lines[1]).expect("JSON");
    assert_eq!(inside["fields"]["n"], 1);
    assert_eq!(inside["span"]["name"], "request");
    for outside in [&lines[0], &lines[3]] {
        let outside: serde_json::Value = serde_json::from_str(outside).expect("JSON");
        assert!(outside.get("trace_id").is_none() && outside.get("span_id").is_none(), "{outside}");
    }
}

/// Logs four readable lines under a global subscriber that writes to `lines` and gives spans
/// OpenTelemetry ids (as the one of [`global_lines_with_ids`] does): one before any span, one in a span,
/// one in a span inside it, one after. Checks that the two inside a span end with their span's `trace_id`
/// and `span_id`, after the line's own fields, and that the two outside carry neither.
///
/// # Panics
///
/// When a line is not as described.
pub fn assert_readable_lines_name_their_trace(lines: &Lines) {
    let (lines, outer, inner) = log_in_and_out_of_spans(lines);
    for (line, ids, message) in [(&lines[1], &outer, "inside n=1"), (&lines[2], &inner, "nested")] {
        let last = format!("{message} trace_id={} span_id={}", ids.trace_id_hex(), ids.span_id_hex());
        assert!(line.ends_with(&last), "{last} at the end of {line}");
    }
    assert!(lines[2].contains(" request:tool: "), "the spans are still named: {}", lines[2]);
    for outside in [&lines[0], &lines[3]] {
        assert!(!outside.contains("trace_id") && !outside.contains("span_id"), "{outside}");
    }
}
