//! The fields log lines show: what a reader needs, without the attributes meant for the trace.
//!
//! A `#[hardened]` span carries `code.function`, `code.namespace`, `hardened.kind`, `otel.*` and, for a
//! tool, `gen_ai.*`: attributes for the exported span, which repeat the span's name and the event's
//! target in a log line. The log layer formats a span's fields when the span is created, whether or not
//! a line is ever written inside it, so leaving them out also saves that work on every call.

use std::collections::BTreeMap;
use std::fmt;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::{RecordFields, VisitOutput};
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::FormattedFields;
use tracing_subscriber::fmt::format::{DefaultVisitor, JsonVisitor, Writer};

/// Whether a field is for the trace only: OpenTelemetry's own (`otel.*`), the semantic conventions' code
/// location and `GenAI` attributes, and the span's kind.
fn is_trace_attribute(name: &str) -> bool {
    ["otel.", "code.", "gen_ai.", "hardened."].iter().any(|prefix| name.starts_with(prefix))
}

/// A visitor passing every field but the trace attributes to `V`.
#[derive(Debug)]
pub(super) struct LogVisitor<V>(V);

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
        let mut visitor = LogVisitor(DefaultVisitor::new(writer, true));
        fields.record(&mut visitor);
        visitor.finish()
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

/// The JSON format's fields (as `JsonFields` writes them: one JSON object) without the trace attributes.
#[derive(Debug, Default)]
pub(super) struct JsonFields;

impl<'writer> FormatFields<'writer> for JsonFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'writer>, fields: R) -> fmt::Result {
        // Always an object, `{}` when every field is left out: the JSON event format parses it.
        let mut visitor = LogVisitor(JsonVisitor::new(&mut writer));
        fields.record(&mut visitor);
        visitor.finish()
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let mut added = String::new();
        self.format_fields(Writer::new(&mut added), fields)?;
        if added == "{}" {
            return Ok(());
        }
        if current.fields.is_empty() || current.fields == "{}" {
            current.fields = added;
            return Ok(());
        }
        let mut merged: BTreeMap<String, serde_json::Value> =
            serde_json::from_str(&current.fields).map_err(|_| fmt::Error)?;
        let added: BTreeMap<String, serde_json::Value> = serde_json::from_str(&added).map_err(|_| fmt::Error)?;
        merged.extend(added);
        current.fields = serde_json::to_string(&merged).map_err(|_| fmt::Error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
