//! Log lines from `telemetry::log_layer`: events with their spans and fields, without the attributes
//! meant for the exported trace.

use hardened::hardened;
use hardened::telemetry::{self, LogFormat};
use hardened_tests::log_lines::Lines;
use tracing::field::Empty;
use tracing_subscriber::layer::SubscriberExt as _;

#[hardened(kind = "tool", fields(expression))]
fn evaluate(expression: &str) -> Result<usize, std::io::Error> {
    tracing::info!(length = expression.len(), "evaluating");
    Ok(expression.len())
}

/// Runs `work` under a subscriber logging in `format`, and returns what it wrote.
fn logged(format: LogFormat, work: impl FnOnce()) -> String {
    let lines = Lines::default();
    let subscriber = tracing_subscriber::registry().with(telemetry::log_layer(format, lines.clone()));
    tracing::subscriber::with_default(subscriber, work);
    lines.text()
}

#[test]
fn readable_lines_show_spans_with_their_own_fields_only() {
    let text = logged(LogFormat::Readable, || {
        evaluate("2 + 3").expect("evaluates");
    });
    assert!(text.contains("evaluate{expression=\"2 + 3\"}"), "{text}");
    assert!(text.contains("evaluating length=5"), "{text}");
    for attribute in ["code.function", "code.namespace", "hardened.kind", "otel.kind", "gen_ai."] {
        assert!(!text.contains(attribute), "{attribute} in {text}");
    }
    assert!(!text.contains('\u{1b}'), "no colour escapes outside a terminal: {text:?}");
}

#[test]
fn json_lines_carry_the_span_without_trace_attributes() {
    let text = logged(LogFormat::Json, || {
        evaluate("2 + 3").expect("evaluates");
    });
    let line: serde_json::Value = serde_json::from_str(text.lines().next().expect("one line")).expect("JSON");
    assert_eq!(line["fields"]["message"], "evaluating");
    assert_eq!(line["fields"]["length"], 5);
    assert_eq!(line["span"], serde_json::json!({ "name": "evaluate", "expression": "2 + 3" }), "{text}");
}

#[test]
fn fields_recorded_later_join_the_span_in_both_formats() {
    let work = || {
        let span =
            tracing::info_span!("job", attempt = 1, otel.name = "job run", result = Empty, otel.status_code = Empty);
        span.record("otel.status_code", "ok");
        span.record("result", "done");
        span.in_scope(|| tracing::info!("inside"));
    };
    let readable = logged(LogFormat::Readable, work);
    assert!(readable.contains("job{attempt=1 result=\"done\"}: "), "{readable}");

    let json = logged(LogFormat::Json, work);
    let line: serde_json::Value = serde_json::from_str(json.lines().next().expect("one line")).expect("JSON");
    assert_eq!(line["span"], serde_json::json!({ "name": "job", "attempt": 1, "result": "done" }), "{json}");
}

#[test]
fn a_span_of_trace_attributes_only_is_an_empty_object_in_json() {
    let json = logged(LogFormat::Json, || {
        let span = tracing::info_span!("quiet", otel.kind = "internal", code.function = "quiet");
        span.in_scope(|| tracing::info!("inside"));
    });
    let line: serde_json::Value = serde_json::from_str(json.lines().next().expect("one line")).expect("JSON");
    assert_eq!(line["span"], serde_json::json!({ "name": "quiet" }), "{json}");
}

#[test]
fn json_span_fields_read_as_tracing_subscribers_own_json_fields_give_them() {
    let work = || {
        let span = tracing::info_span!(
            "varied",
            text = "a \"quote\", a \\ backslash, a\nnewline, a\ttab, a \u{7} bell, \u{e9}t\u{e9}",
            signed = -3_i64,
            unsigned = 7_u64,
            float = 1.5_f64,
            not_a_number = f64::NAN,
            flag = true,
            debug = ?["a\"b", "c"],
            display = %"shown as \"Display\"",
            later = Empty,
            r#type = "raw identifier",
        );
        span.record("later", 42);
        span.record("signed", 4);
        span.record("text", "recorded again");
        span.in_scope(|| tracing::info!("inside"));
    };
    let ours = logged(LogFormat::Json, work);
    let theirs = {
        let lines = Lines::default();
        let layer = tracing_subscriber::fmt::layer().json().with_current_span(true).with_writer(lines.clone());
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), work);
        lines.text()
    };
    let line = |text: &str| -> serde_json::Value {
        serde_json::from_str(text.lines().next().expect("one line")).expect("JSON")
    };
    let (ours, theirs) = (line(&ours), line(&theirs));
    assert_eq!(ours["span"], theirs["span"], "{ours} against {theirs}");
    assert_eq!(ours["spans"], theirs["spans"]);
    assert_eq!(ours["span"]["signed"], 4, "the later value of a field recorded twice");
    assert_eq!(ours["span"]["not_a_number"], serde_json::Value::Null);
}
