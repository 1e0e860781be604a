//! The tracing subscriber: filter, readable or JSON logs, and OpenTelemetry export over OTLP.
