//! The exemplars' source: a call's span becomes an exemplar when its OpenTelemetry trace is sampled.

use opentelemetry::trace::TraceContextExt as _;

use super::TelemetryConfig;
use crate::metrics::exemplars::{self, SampledSpan};

/// Registers [`sampled_span`] as the exemplars' source and turns them on when `config` keeps them
/// ([`TelemetryConfig::keeps_exemplars`]), off otherwise.
///
/// A call offers its exemplar only when its span was noted as sampled as its context started, which
/// [`otel_layer`](super::otel_layer) and [`trace_ids_layer`](super::trace_ids_layer) do: under a
/// `tracing-opentelemetry` layer built by hand, no call keeps an exemplar.
pub fn install_exemplars(config: &TelemetryConfig) {
    exemplars::set_source(sampled_span);
    exemplars::set_enabled(config.keeps_exemplars());
}

/// The trace and span ids of `span`, when it has a valid OpenTelemetry span context whose trace is sampled.
#[must_use]
pub fn sampled_span(span: &tracing::Span) -> Option<SampledSpan> {
    let context = super::otel_context(span);
    let otel_span = context.span();
    let span_context = otel_span.span_context();
    (span_context.is_valid() && span_context.is_sampled()).then(|| SampledSpan {
        trace_id: span_context.trace_id().to_bytes(),
        span_id: span_context.span_id().to_bytes(),
    })
}
