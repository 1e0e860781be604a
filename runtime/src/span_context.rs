//! A span's OpenTelemetry context, under whichever span layer [`init`](crate::telemetry::init) installed:
//! the exporting [`otel_layer`](crate::telemetry::otel_layer) or the ids-only
//! [`trace_ids_layer`](crate::telemetry::trace_ids_layer).
//!
//! `tracing-opentelemetry`'s [`OpenTelemetrySpanExt`] reaches only its own layer; these functions reach
//! both, so that code continuing a trace or reading a span's ids works the same with and without an
//! exporter.

use std::sync::atomic::Ordering;

use opentelemetry::Context;
use opentelemetry::trace::TraceContextExt as _;
use tracing::span::Id;
use tracing::{Dispatch, Span};
use tracing_opentelemetry::{OpenTelemetrySpanExt as _, SetParentError};

use crate::span_ids::{SpanIdsHook, note_if_sampled};

/// Makes `parent` the parent of `span`: `span` continues `parent`'s trace (or starts a new one when
/// `parent` has no valid span context), and the sampler decides anew. For a request that carries a
/// `traceparent` header, with [`propagation::extract`](crate::propagation::extract):
///
/// ```
/// let headers = http::HeaderMap::new(); // an incoming request's headers
/// let span = tracing::info_span!("handle");
/// let _ = hardened::telemetry::set_parent(&span, hardened::propagation::extract(&headers));
/// ```
///
/// # Errors
///
/// [`SetParentError::AlreadyStarted`] once the span's context has been used (the span entered, its
/// context read, or a child span made under it), [`SetParentError::SpanDisabled`] for a disabled span
/// (no subscriber, or every layer's filter turned it away), and [`SetParentError::LayerNotFound`] under a
/// subscriber without an OpenTelemetry layer. A span only the trace filter leaves out takes nothing and
/// answers `Ok`, as under `tracing-opentelemetry`.
pub fn set_parent(span: &Span, parent: Context) -> Result<(), SetParentError> {
    let mut outcome = None;
    span.with_subscriber(|(id, dispatch)| {
        let Some(hook) = dispatch.downcast_ref::<SpanIdsHook>() else { return };
        // A span the trace filter leaves out has no context to change: nothing to do, as under
        // `tracing-opentelemetry`.
        outcome = Some(Ok(()));
        hook.with_span(dispatch, id, &mut |metadata, ids| {
            if ids.started.load(Ordering::Relaxed) {
                outcome = Some(Err(SetParentError::AlreadyStarted));
                return;
            }
            ids.context = hook.decider.context(&parent, metadata.name(), ids.context.span().span_context().span_id());
            note_if_sampled(id, &ids.context);
            outcome = Some(Ok(()));
        });
    });
    match outcome {
        Some(outcome) => outcome,
        None => span.set_parent(parent),
    }
}

/// The OpenTelemetry context of `span`: its parent's context with the span's ids and sampled flag. Empty
/// for a span that is not traced; from then on, [`set_parent`] no longer changes `span`'s parent.
///
/// ```
/// use opentelemetry::trace::TraceContextExt as _;
///
/// let span = tracing::info_span!("work");
/// let trace_id = hardened::telemetry::otel_context(&span).span().span_context().trace_id();
/// # let _ = trace_id;
/// ```
#[must_use]
pub fn otel_context(span: &Span) -> Context {
    span.with_subscriber(|(id, dispatch)| context_of(id, dispatch)).flatten().unwrap_or_default()
}

/// The OpenTelemetry context of span `id` of `dispatch`, if the span is traced.
pub(crate) fn context_of(id: &Id, dispatch: &Dispatch) -> Option<Context> {
    let Some(hook) = dispatch.downcast_ref::<SpanIdsHook>() else {
        return tracing_opentelemetry::get_otel_context(id, dispatch);
    };
    let mut context = None;
    hook.with_span(dispatch, id, &mut |_, ids| {
        ids.started.store(true, Ordering::Relaxed);
        context = Some(ids.context.clone());
    });
    context
}
