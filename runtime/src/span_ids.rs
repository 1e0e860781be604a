//! Trace ids without export: what [`init`](crate::telemetry::init) installs when no OTLP endpoint is set.
//!
//! Without an exporter, a span's attributes, events, timings and status go nowhere; only its ids and
//! sampling decision are read (by audit events, log lines, outbound `traceparent` headers, exemplars).
//! [`SpanIdsLayer`] gives each span exactly those, as the SDK's tracer under `tracing-opentelemetry`
//! would (same sampler, same random ids, same trace flags, the same parent), and keeps one small
//! extension per span: its OpenTelemetry context, made current while the span is entered.
//! [`set_parent`](crate::telemetry::set_parent) and [`otel_context`](crate::telemetry::otel_context)
//! reach it through [`SpanIdsHook`].

use std::any::TypeId;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::{SpanContext, SpanId, SpanKind, TraceContextExt as _, TraceFlags};
use opentelemetry::{Context, ContextGuard};
use opentelemetry_sdk::trace::{IdGenerator as _, RandomIdGenerator, Sampler, SamplingDecision, ShouldSample as _};
use tracing::span::{Attributes, Id};
use tracing::{Dispatch, Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context as LayerContext;
use tracing_subscriber::registry::LookupSpan;

use crate::metrics::exemplars;

/// A span's OpenTelemetry context under [`SpanIdsLayer`].
#[derive(Debug)]
pub(crate) struct SpanIds {
    /// The parent's context with this span's span context in it.
    pub(crate) context: Context,
    /// Whether the context has been used (entered, read, or given to a child): from then on, its parent
    /// cannot change.
    pub(crate) started: AtomicBool,
}

/// Decides span contexts as the SDK's tracer does.
#[derive(Debug)]
pub(crate) struct Decider {
    sampler: Sampler,
    ids: RandomIdGenerator,
}

impl Decider {
    /// The context of a span named `name` with `span_id` under `parent`: the parent's trace (a new one
    /// without a valid parent), and the sampler's decision in the flags; `parent`'s other entries (such
    /// as baggage) stay.
    pub(crate) fn context(&self, parent: &Context, name: &str, span_id: SpanId) -> Context {
        if parent.is_telemetry_suppressed() {
            return parent.with_remote_span_context(SpanContext::empty_context());
        }
        let parent_span = parent.span();
        let parent_context = parent_span.span_context();
        let (trace_id, parent_flags) = if parent_context.is_valid() {
            (parent_context.trace_id(), parent_context.trace_flags())
        } else {
            (self.ids.new_trace_id(), TraceFlags::default())
        };
        let sampling = self.sampler.should_sample(Some(parent), trace_id, name, &SpanKind::Internal, &[], &[]);
        let flags = match sampling.decision {
            SamplingDecision::RecordAndSample => parent_flags.with_sampled(true),
            SamplingDecision::RecordOnly => parent_flags.with_sampled(false),
            SamplingDecision::Drop => TraceFlags::default(),
        };
        parent.with_remote_span_context(SpanContext::new(trace_id, span_id, flags, false, sampling.trace_state))
    }
}

/// Notes `id` for the exemplars when `context`'s span is sampled.
pub(crate) fn note_if_sampled(id: &Id, context: &Context) {
    if context.span().span_context().is_sampled() && exemplars::enabled() {
        exemplars::note_sampled(id);
    }
}

/// What [`set_parent`](crate::telemetry::set_parent) and [`otel_context`](crate::telemetry::otel_context) find by downcasting
/// the subscriber: the layer's decider, and a way to reach a span's [`SpanIds`] knowing only the
/// [`Dispatch`].
pub(crate) struct SpanIdsHook {
    pub(crate) decider: Decider,
    with_span: fn(&Dispatch, &Id, &mut WithIds<'_>),
}

/// What [`SpanIdsHook::with_span`] calls with a span's metadata and ids.
pub(crate) type WithIds<'f> = dyn FnMut(&'static Metadata<'static>, &mut SpanIds) + 'f;

impl SpanIdsHook {
    /// Calls `f` with the metadata and ids of span `id`, if the span has ids.
    pub(crate) fn with_span(&self, dispatch: &Dispatch, id: &Id, f: &mut WithIds<'_>) {
        (self.with_span)(dispatch, id, f);
    }
}

/// The [`SpanIdsHook::with_span`] of a subscriber `S`.
fn with_span<S>(dispatch: &Dispatch, id: &Id, f: &mut WithIds<'_>)
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    let Some(span) = dispatch.downcast_ref::<S>().and_then(|subscriber| subscriber.span(id)) else { return };
    let mut extensions = span.extensions_mut();
    if let Some(ids) = extensions.get_mut::<SpanIds>() {
        f(span.metadata(), ids);
    }
}

thread_local! {
    /// The contexts made current by entering spans on this thread, with the span each belongs to.
    static ENTERED: RefCell<Vec<(Id, ContextGuard)>> = const { RefCell::new(Vec::new()) };
}

/// The layer giving spans their OpenTelemetry ids and nothing else.
pub(crate) struct SpanIdsLayer {
    hook: SpanIdsHook,
}

impl std::fmt::Debug for SpanIdsLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanIdsLayer").field("decider", &self.hook.decider).finish_non_exhaustive()
    }
}

impl SpanIdsLayer {
    pub(crate) fn new<S>(sampler: Sampler) -> Self
    where
        S: Subscriber + for<'span> LookupSpan<'span>,
    {
        let decider = Decider { sampler, ids: RandomIdGenerator::default() };
        SpanIdsLayer { hook: SpanIdsHook { decider, with_span: with_span::<S> } }
    }

    /// The context a new span continues, as `tracing-opentelemetry` chooses it with context activation:
    /// its explicit parent's if this layer sees that parent, the current OpenTelemetry context for a
    /// contextual span, none for a root or a span whose explicit parent is not traced.
    fn parent_context<S>(attrs: &Attributes<'_>, ctx: &LayerContext<'_, S>) -> Context
    where
        S: Subscriber + for<'span> LookupSpan<'span>,
    {
        if let Some(parent) = attrs.parent().and_then(|parent| ctx.span(parent)) {
            let extensions = parent.extensions();
            if let Some(ids) = extensions.get::<SpanIds>() {
                ids.started.store(true, Ordering::Relaxed);
                return ids.context.clone();
            }
        }
        if attrs.is_contextual() { Context::current() } else { Context::new() }
    }
}

impl<S> Layer<S> for SpanIdsLayer
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let parent = Self::parent_context(attrs, &ctx);
        let context = self.hook.decider.context(&parent, attrs.metadata().name(), self.hook.decider.ids.new_span_id());
        note_if_sampled(id, &context);
        span.extensions_mut().insert(SpanIds { context, started: AtomicBool::new(false) });
    }

    fn on_enter(&self, id: &Id, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let context = {
            let extensions = span.extensions();
            let Some(ids) = extensions.get::<SpanIds>() else { return };
            ids.started.store(true, Ordering::Relaxed);
            ids.context.clone()
        };
        // Attached with the span's extensions released: attaching may log, which looks spans up.
        let guard = context.attach();
        ENTERED.with_borrow_mut(|entered| entered.push((id.clone(), guard)));
    }

    fn on_exit(&self, id: &Id, _ctx: LayerContext<'_, S>) {
        // The last entry of this span: spans are exited in the order they were entered, but need not be.
        let guard = ENTERED.with_borrow_mut(|entered| {
            let at = entered.iter().rposition(|(entered_id, _)| entered_id == id)?;
            Some(entered.remove(at).1)
        });
        drop(guard);
    }

    // `set_parent` and `otel_context` find the hook by downcasting the subscriber.
    #[allow(unsafe_code, reason = "`downcast_raw` is an unsafe trait method")]
    unsafe fn downcast_raw(&self, id: TypeId) -> Option<*const ()> {
        if id == TypeId::of::<Self>() {
            Some(std::ptr::from_ref(self).cast())
        } else if id == TypeId::of::<SpanIdsHook>() {
            Some(std::ptr::from_ref(&self.hook).cast())
        } else {
            None
        }
    }
}
