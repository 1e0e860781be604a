//! A span's log fields stored only when it has some to show (or, in JSON, when a line is written inside it).
//!
//! The `fmt` layer formats each span's fields when the span is created and keeps them in the span's
//! extensions (a lookup, a lock and an allocation), whether or not a line is ever written inside it. A
//! `#[hardened]` span's fields are trace attributes, which log lines leave out ([`log_fields`]), so
//! what it would keep is an empty text (`{}` in JSON). [`FieldsWhenShown`] lets the layer store a span's
//! fields only when one of them shows in a line. The readable format writes a span without stored fields
//! as one without fields; the JSON format requires them of every span it writes, and [`FieldsFilledIn`]
//! gives the spans of a line that have none their empty fields before the line is formatted. A field
//! recorded later (`error.message`) is stored by the layer as it is recorded.
//!
//! [`log_fields`]: super::log_fields

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use super::around::StepsAround;
use super::log_fields::LogVisitor;

/// Passes a span's creation on to the log layer it stands around (in an
/// [`Around`](super::around::Around)) only when the span has a field that log lines show.
#[derive(Debug)]
pub(super) struct FieldsWhenShown;

impl StepsAround for FieldsWhenShown {
    fn on_new_span(&self, attrs: &Attributes<'_>, _id: &Id, new: impl FnOnce()) {
        if shows_a_field(attrs) {
            new();
        }
    }
}

/// Whether any field given a value at the span's creation is one that log lines show: one the log's
/// visitor passes on.
fn shows_a_field(attrs: &Attributes<'_>) -> bool {
    let mut shown = LogVisitor(AnyField(false));
    attrs.record(&mut shown);
    shown.0.0
}

/// Notes that a field was visited. Every typed visit comes to `record_debug` by default, which looks at
/// nothing: no value is formatted.
struct AnyField(bool);

impl Visit for AnyField {
    fn record_debug(&mut self, _field: &Field, _value: &dyn fmt::Debug) {
        self.0 = true;
    }
}

/// An event format that first gives each span of the line without stored fields its empty ones, as
/// the field format writes no field: `{}` for the JSON format, which expects every span's.
#[derive(Debug, Clone)]
pub(super) struct FieldsFilledIn<F>(pub(super) F);

impl<S, N, F> FormatEvent<S, N> for FieldsFilledIn<F>
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
    N: for<'writer> FormatFields<'writer> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        for span in ctx.event_scope().into_iter().flatten() {
            if span.extensions().get::<FormattedFields<N>>().is_some() {
                continue;
            }
            let mut extensions = span.extensions_mut();
            // Another thread's line may have filled them in since.
            if extensions.get_mut::<FormattedFields<N>>().is_none() {
                let mut fields = FormattedFields::<N>::new(String::new());
                let none = span.metadata().fields().value_set(&[]);
                ctx.field_format().format_fields(fields.as_writer(), Record::new(&none))?;
                extensions.insert(fields);
            }
        }
        self.0.format_event(ctx, writer, event)
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::Layer as _;
    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::registry::{LookupSpan as _, Registry};

    use super::*;
    use crate::telemetry::LogFormat;

    /// The lines written, shared with the test.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("not poisoned").extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Lines {
        type Writer = Lines;

        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    impl Lines {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().expect("not poisoned").clone()).expect("lines are text")
        }
    }

    /// Whether the span `id` has stored log fields, under the default dispatcher.
    fn has_stored_fields(id: &Id) -> bool {
        tracing::dispatcher::get_default(|dispatch| {
            let registry = dispatch.downcast_ref::<Registry>().expect("a registry");
            let span = registry.span(id).expect("the span is open");
            let extensions = span.extensions();
            extensions.get::<FormattedFields<super::super::log_fields::JsonFields>>().is_some()
                || extensions.get::<FormattedFields<super::super::log_fields::ReadableFields>>().is_some()
        })
    }

    /// A `#[hardened]`-like span (trace attributes only), a span with a field the log shows, and a line
    /// written inside both, for `format`: whether each span stored fields when created, and the line.
    fn spans_and_line(format: LogFormat) -> (bool, bool, String) {
        let lines = Lines::default();
        let layer = super::super::log_layer(format, lines.clone());
        let subscriber = Registry::default().with(layer.with_filter(tracing_subscriber::filter::LevelFilter::INFO));
        tracing::subscriber::with_default(subscriber, || {
            let call = tracing::info_span!(
                "call",
                otel.kind = "internal",
                code.function = "f",
                error.message = tracing::field::Empty
            );
            let request = tracing::info_span!(parent: &call, "request", http.route = "/v1", otel.kind = "server");
            let stored =
                (has_stored_fields(&call.id().expect("enabled")), has_stored_fields(&request.id().expect("enabled")));
            request.in_scope(|| tracing::info!("inside"));
            if matches!(format, LogFormat::Json) {
                assert!(has_stored_fields(&call.id().expect("enabled")), "filled in for the line");
            }
            (stored.0, stored.1, lines.text())
        })
    }

    #[test]
    fn a_span_of_trace_attributes_stores_no_fields_until_a_line_is_written_inside_it() {
        let (call, request, line) = spans_and_line(LogFormat::Json);
        assert!(!call, "trace attributes only: nothing stored");
        assert!(request, "a field the log shows: stored");
        let line: serde_json::Value = serde_json::from_str(line.trim()).expect("one JSON line");
        assert_eq!(line["span"], serde_json::json!({"name": "request", "http.route": "/v1"}));
        assert_eq!(
            line["spans"],
            serde_json::json!([{"name": "call"}, {"name": "request", "http.route": "/v1"}]),
            "the span with no stored fields is written as the layer would have stored it"
        );

        let (call, request, line) = spans_and_line(LogFormat::Readable);
        assert!(!call);
        assert!(request);
        assert!(line.contains("call:request{http.route=\"/v1\"}: "), "{line}");
        assert!(line.trim_end().ends_with("inside"), "{line}");
    }

    #[test]
    fn a_span_with_a_shown_field_of_any_type_stores_its_fields() {
        let subscriber = Registry::default().with(super::super::log_layer(LogFormat::Json, Lines::default()));
        tracing::subscriber::with_default(subscriber, || {
            let spans = [
                tracing::info_span!("number", otel.kind = "internal", attempt = 2_u64),
                tracing::info_span!("signed", code.function = "f", delta = -1_i64),
                tracing::info_span!("flag", hardened.kind = "tool", cached = true),
                tracing::info_span!("debug", gen_ai.tool.name = "search", query = ?["a", "b"]),
                tracing::info_span!("float", ratio = 0.5_f64),
            ];
            for span in &spans {
                let name = span.metadata().expect("enabled").name();
                assert!(has_stored_fields(&span.id().expect("enabled")), "{name}");
            }
            let none = tracing::info_span!("none", otel.kind = "internal", code.function = "f", hardened.kind = "tool");
            assert!(!has_stored_fields(&none.id().expect("enabled")));
        });
    }

    #[test]
    fn a_field_recorded_later_is_shown() {
        let lines = Lines::default();
        let subscriber = Registry::default().with(super::super::log_layer(LogFormat::Json, lines.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let call = tracing::info_span!("call", otel.kind = "internal", error.message = tracing::field::Empty);
            call.record("otel.status_code", "ERROR");
            call.record("error.message", "the model refused");
            call.in_scope(|| tracing::warn!("failed"));
        });
        let line: serde_json::Value = serde_json::from_str(lines.text().trim()).expect("one JSON line");
        assert_eq!(line["span"], serde_json::json!({"name": "call", "error.message": "the model refused"}));
    }
}
