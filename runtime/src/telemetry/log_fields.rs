//! The fields log lines show: what a reader needs, without the attributes meant for the trace.
//!
//! A `#[hardened]` span carries `code.function`, `code.namespace`, `hardened.kind`, `otel.*` and, for a
//! tool, `gen_ai.*`: attributes for the exported span, which repeat the span's name and the event's
//! target in a log line. A span whose fields are all left out stores none until a line is written inside
//! it ([`fields_when_shown`](super::fields_when_shown)), which saves their formatting on every call.

use std::cell::Cell;
use std::fmt;
use std::io;

use hardened_core::support::needs_json_escaping;
use tracing::field::{Field, Visit};
use tracing_subscriber::field::{RecordFields, VisitOutput};
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::FormattedFields;
use tracing_subscriber::fmt::format::{DefaultVisitor, Writer};

/// Whether a field is for the trace only: OpenTelemetry's own (`otel.*`), the semantic conventions' code
/// location and `GenAI` attributes, and the span's kind.
fn is_trace_attribute(name: &str) -> bool {
    ["otel.", "code.", "gen_ai.", "hardened."].iter().any(|prefix| name.starts_with(prefix))
}

/// A visitor passing every field but the trace attributes to `V`.
#[derive(Debug)]
pub(super) struct LogVisitor<V>(pub(super) V);

impl<V: Visit> Visit for LogVisitor<V> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if !is_trace_attribute(field.name()) {
            self.0.record_debug(field, value);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if !is_trace_attribute(field.name()) {
            self.0.record_str(field, value);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if !is_trace_attribute(field.name()) {
            self.0.record_i64(field, value);
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if !is_trace_attribute(field.name()) {
            self.0.record_u64(field, value);
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if !is_trace_attribute(field.name()) {
            self.0.record_f64(field, value);
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if !is_trace_attribute(field.name()) {
            self.0.record_bool(field, value);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if !is_trace_attribute(field.name()) {
            self.0.record_error(field, value);
        }
    }
}

impl<V: VisitOutput<fmt::Result>> VisitOutput<fmt::Result> for LogVisitor<V> {
    fn finish(self) -> fmt::Result {
        self.0.finish()
    }
}

/// The readable format's fields (as `DefaultFields` writes them: `name=value`, space-separated) without the
/// trace attributes.
#[derive(Debug, Default)]
pub(super) struct ReadableFields;

impl<'writer> FormatFields<'writer> for ReadableFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        written_at_once(writer, |writer| {
            let mut visitor = LogVisitor(DefaultVisitor::new(writer, true));
            fields.record(&mut visitor);
            visitor.finish()
        })
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        // The visitor puts a space before a field unless it is the first, so a record of left-out fields
        // adds nothing.
        let first = current.fields.is_empty();
        let mut visitor = LogVisitor(DefaultVisitor::new(current.as_writer(), first));
        fields.record(&mut visitor);
        visitor.finish()
    }
}

/// The JSON format's fields without the trace attributes: one JSON object, written as the fields are
/// visited.
///
/// The JSON event format parses a span's fields back into a map when it writes a line, so the object
/// need not be sorted or free of repeated keys: a key given twice is read as its last value, as
/// `JsonFields` would have merged it. That lets a record add to the object by appending, where
/// `JsonFields` parses and rewrites the whole object, and lets each field be written without first
/// going into a map of `serde_json::Value`s.
#[derive(Debug, Default)]
pub(super) struct JsonFields;

impl<'writer> FormatFields<'writer> for JsonFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        written_at_once(writer, |mut writer| {
            // Always an object, `{}` when every field is left out: the JSON event format parses it.
            writer.write_char('{')?;
            write_json_entries(&mut writer, false, fields)?;
            writer.write_char('}')
        })
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        if current.fields.is_empty() {
            return self.format_fields(current.as_writer(), fields);
        }
        // `{...}` becomes `{..., added}`; a record of left-out fields adds nothing.
        let closing = current.fields.pop();
        debug_assert_eq!(closing, Some('}'), "span fields are a JSON object");
        let has_entries = current.fields.len() > 1;
        let result = write_json_entries(&mut current.fields, has_entries, fields);
        current.fields.push('}');
        result
    }
}

thread_local! {
    /// Where a span's fields are formatted before they are written out in one piece.
    static SCRATCH: Cell<String> = const { Cell::new(String::new()) };
}

/// Calls `format` with a writer into this thread's scratch text, then writes that text into `writer` at
/// once: the span's `String` is then allocated once, to its length, rather than grown field by field
/// (three or four reallocations for a request's span). A writer with ANSI colours is written to
/// directly, as a scratch writer has none. The text is taken out of its cell while in use, so a value
/// whose `Debug` formats another span's fields gets a scratch of its own.
fn written_at_once(mut writer: Writer<'_>, format: impl FnOnce(Writer<'_>) -> fmt::Result) -> fmt::Result {
    if writer.has_ansi_escapes() {
        return format(writer);
    }
    let mut text = SCRATCH.take();
    text.clear();
    let result = format(Writer::new(&mut text)).and_then(|()| writer.write_str(&text));
    // A scratch grown by one huge value is not kept.
    if text.capacity() <= MAX_SCRATCH {
        SCRATCH.set(text);
    }
    result
}

/// The largest scratch text a thread keeps.
const MAX_SCRATCH: usize = 4096;

/// Writes `fields`, but the trace attributes, as `"name":value` entries separated by commas, the first
/// preceded by a comma when `after_entries`.
fn write_json_entries<R: RecordFields>(out: &mut dyn fmt::Write, after_entries: bool, fields: R) -> fmt::Result {
    let mut entries = LogVisitor(JsonEntries { out, separate: after_entries, result: Ok(()) });
    fields.record(&mut entries);
    entries.0.result
}

/// Writes each field visited as a JSON object entry, with the values `JsonVisitor` would give it.
struct JsonEntries<'out> {
    out: &'out mut dyn fmt::Write,
    /// Whether an entry precedes the next one.
    separate: bool,
    result: fmt::Result,
}

impl JsonEntries<'_> {
    fn entry(&mut self, name: &str, value: impl FnOnce(&mut dyn fmt::Write) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = self.write_entry(name, value);
        }
    }

    fn write_entry(&mut self, name: &str, value: impl FnOnce(&mut dyn fmt::Write) -> fmt::Result) -> fmt::Result {
        if std::mem::replace(&mut self.separate, true) {
            self.out.write_char(',')?;
        }
        write_json_str(self.out, name)?;
        self.out.write_char(':')?;
        value(self.out)
    }
}

impl Visit for JsonEntries<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        // `serde_json` writes a float that is not finite as `null`, as `Value::from` makes it.
        self.entry(field.name(), |out| write_json(out, &value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.entry(field.name(), |out| write!(out, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.entry(field.name(), |out| write!(out, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.entry(field.name(), |out| out.write_str(if value { "true" } else { "false" }));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.entry(field.name(), |out| write_json_str(out, value));
    }

    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        self.entry(field.name(), |out| write_json(out, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let name = field.name();
        let name = name.strip_prefix("r#").unwrap_or(name);
        self.entry(name, |out| write_json_str(out, &format!("{value:?}")));
    }
}

/// `value` as `serde_json` writes it, straight into `out`.
fn write_json<T: serde::Serialize + ?Sized>(out: &mut dyn fmt::Write, value: &T) -> fmt::Result {
    serde_json::to_writer(TextWriter(out), value).map_err(|_| fmt::Error)
}

/// A string as `serde_json` writes it: as it is between quotes when no byte of it needs escaping, which
/// most field names and values are, else through `serde_json`.
fn write_json_str(out: &mut dyn fmt::Write, text: &str) -> fmt::Result {
    if needs_json_escaping(text) {
        return write_json(out, text);
    }
    out.write_char('"')?;
    out.write_str(text)?;
    out.write_char('"')
}

/// `serde_json`'s output into a [`fmt::Write`]. `serde_json` writes whole characters in each piece (it
/// cuts a string only before a character it escapes, which is ASCII), so each piece is text.
struct TextWriter<'out>(&'out mut dyn fmt::Write);

impl io::Write for TextWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let text = std::str::from_utf8(bytes).map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
        self.0.write_str(text).map_err(io::Error::other)?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_written_as_serde_json_writes_them() {
        let texts = ["plain", "quote \" and backslash \\", "line\nbreak\ttab\u{1}", "héllo ✓ 𝄞 \u{7f}", ""];
        for text in texts {
            let expected = serde_json::to_string(text).expect("serializes");
            let mut out = String::new();
            write_json(&mut out, text).expect("a string is written");
            assert_eq!(out, expected, "{text:?}");
            let mut out = String::new();
            write_json_str(&mut out, text).expect("a string is written");
            assert_eq!(out, expected, "{text:?}");
        }
        for number in [0.5, f64::NAN, f64::INFINITY, -1e300] {
            let mut out = String::new();
            write_json(&mut out, &number).expect("a number is written");
            assert_eq!(out, serde_json::to_string(&number).expect("serializes"));
        }
    }

    /// The fields `format` stores for the span `make` creates, and the capacity of their `String`.
    fn stored_fields<N>(format: N, make: impl FnOnce() -> tracing::Span) -> (String, usize)
    where
        N: for<'writer> FormatFields<'writer> + Send + Sync + 'static,
    {
        use tracing_subscriber::layer::SubscriberExt as _;
        use tracing_subscriber::registry::{LookupSpan as _, Registry};

        let layer = tracing_subscriber::fmt::layer().with_ansi(false).fmt_fields(format).with_writer(io::sink);
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            let span = make();
            let id = span.id().expect("the span is enabled");
            tracing::dispatcher::get_default(|dispatch| {
                let registry = dispatch.downcast_ref::<Registry>().expect("a registry");
                let span = registry.span(&id).expect("the span is open");
                let extensions = span.extensions();
                let fields = extensions.get::<FormattedFields<N>>().expect("the fields are formatted");
                (fields.fields.clone(), fields.fields.capacity())
            })
        })
    }

    /// A value whose `Debug` creates a span of its own, as a value may while its span's fields are
    /// being formatted.
    struct OpensSpan;

    impl fmt::Debug for OpensSpan {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let _inner = tracing::info_span!("inner", note = "inside").entered();
            f.write_str("outer value")
        }
    }

    #[test]
    fn span_fields_are_stored_in_one_allocation_of_their_length() {
        let route = "/v1/sessions/{id}/messages";
        let (json, capacity) = stored_fields(JsonFields, || {
            tracing::info_span!(
                "request",
                otel.kind = "server",
                http.route = route,
                url.path = "/v1/sessions/7/messages"
            )
        });
        assert_eq!(json, r#"{"http.route":"/v1/sessions/{id}/messages","url.path":"/v1/sessions/7/messages"}"#);
        assert_eq!(capacity, json.len(), "written once, not grown field by field");

        let (readable, capacity) = stored_fields(ReadableFields, || {
            tracing::info_span!("request", otel.kind = "server", http.route = route, attempt = 2_u64)
        });
        assert_eq!(readable, "http.route=\"/v1/sessions/{id}/messages\" attempt=2");
        assert_eq!(capacity, readable.len());

        let (json, _) =
            stored_fields(JsonFields, || tracing::info_span!("call", otel.kind = "internal", code.function = "f"));
        assert_eq!(json, "{}", "a span whose fields are all trace attributes is still an object");
    }

    #[test]
    fn a_value_that_opens_a_span_while_fields_are_formatted_gets_its_own_scratch() {
        let (json, _) = stored_fields(JsonFields, || tracing::info_span!("outer", value = ?OpensSpan, after = 1_u64));
        assert_eq!(json, r#"{"value":"outer value","after":1}"#);
        let (readable, _) = stored_fields(ReadableFields, || tracing::info_span!("outer", value = ?OpensSpan));
        assert_eq!(readable, "value=outer value");
    }

    #[test]
    fn trace_attributes_are_recognised_by_prefix() {
        for name in
            ["otel.kind", "otel.status_code", "code.function", "code.namespace", "hardened.kind", "gen_ai.tool.name"]
        {
            assert!(is_trace_attribute(name), "{name}");
        }
        for name in ["expression", "error.message", "http.route", "url.path", "otelx", "codec"] {
            assert!(!is_trace_attribute(name), "{name}");
        }
    }
}
