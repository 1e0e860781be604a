//! Trace ids without export: what [`init`](super::init) installs when no OTLP endpoint is set.
//!
//! Without an exporter, a span's attributes, events, timings and status go nowhere; only its ids and
//! sampling decision are read (by audit events, by outbound `traceparent` headers, by
//! [`OpenTelemetrySpanExt::context`](tracing_opentelemetry::OpenTelemetrySpanExt::context)). The
//! [`IdsOnlyTracer`] gives each span exactly those, as the SDK's tracer would (same sampler, same
//! random ids, same trace flags), and records nothing; [`IdsOnlyLayer`] keeps the
//! `tracing-opentelemetry` layer, so that every `OpenTelemetrySpanExt` call works as before, but hands
//! it no span fields, records or events to convert into attributes that would be dropped.

use std::any::TypeId;
use std::borrow::Cow;
use std::time::SystemTime;

use opentelemetry::trace::{SpanBuilder, SpanContext, SpanKind, Status, TraceContextExt as _, TraceFlags};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{IdGenerator as _, RandomIdGenerator, Sampler, SamplingDecision, ShouldSample as _};
use tracing::field::FieldSet;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_opentelemetry::OpenTelemetryLayer;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context as LayerContext;
use tracing_subscriber::registry::LookupSpan;

use super::sampled_spans::note_if_sampled;

/// A tracer whose spans carry a span context and nothing else.
#[derive(Debug, Clone)]
pub(crate) struct IdsOnlyTracer {
    sampler: Sampler,
    ids: RandomIdGenerator,
}

impl IdsOnlyTracer {
    pub(crate) fn new(sampler: Sampler) -> Self {
        IdsOnlyTracer { sampler, ids: RandomIdGenerator::default() }
    }
}

impl opentelemetry::trace::Tracer for IdsOnlyTracer {
    type Span = IdsOnlySpan;

    /// The span context the SDK's tracer would give a span built under `parent_cx`: the parent's trace
    /// (a new one without a valid parent), a new span id, and the sampler's decision in the flags.
    fn build_with_context(&self, builder: SpanBuilder, parent_cx: &Context) -> IdsOnlySpan {
        if parent_cx.is_telemetry_suppressed() {
            return IdsOnlySpan { span_context: SpanContext::empty_context() };
        }
        let span_id = self.ids.new_span_id();
        let parent_span = parent_cx.span();
        let parent = parent_span.span_context();
        let (trace_id, parent_flags) = if parent.is_valid() {
            (parent.trace_id(), parent.trace_flags())
        } else {
            (self.ids.new_trace_id(), TraceFlags::default())
        };
        let sampling = self.sampler.should_sample(
            Some(parent_cx),
            trace_id,
            &builder.name,
            builder.span_kind.as_ref().unwrap_or(&SpanKind::Internal),
            builder.attributes.as_deref().unwrap_or_default(),
            builder.links.as_deref().unwrap_or_default(),
        );
        let flags = match sampling.decision {
            SamplingDecision::RecordAndSample => parent_flags.with_sampled(true),
            SamplingDecision::RecordOnly => parent_flags.with_sampled(false),
            SamplingDecision::Drop => TraceFlags::default(),
        };
        let span =
            IdsOnlySpan { span_context: SpanContext::new(trace_id, span_id, flags, false, sampling.trace_state) };
        note_if_sampled(&span.span_context);
        span
    }
}

/// A span of [`IdsOnlyTracer`]: its context, and nothing recorded.
#[derive(Debug)]
pub(crate) struct IdsOnlySpan {
    span_context: SpanContext,
}

impl opentelemetry::trace::Span for IdsOnlySpan {
    fn add_event_with_timestamp<T>(&mut self, _name: T, _timestamp: SystemTime, _attributes: Vec<KeyValue>)
    where
        T: Into<Cow<'static, str>>,
    {
    }

    fn span_context(&self) -> &SpanContext {
        &self.span_context
    }

    fn is_recording(&self) -> bool {
        false
    }

    fn set_attribute(&mut self, _attribute: KeyValue) {}

    fn set_status(&mut self, _status: Status) {}

    fn update_name<T>(&mut self, _new_name: T)
    where
        T: Into<Cow<'static, str>>,
    {
    }

    fn add_link(&mut self, _span_context: SpanContext, _attributes: Vec<KeyValue>) {}

    fn end_with_timestamp(&mut self, _timestamp: SystemTime) {}
}

/// The `tracing-opentelemetry` layer with [`IdsOnlyTracer`], given only what decides a span's ids: its
/// metadata and parent, not its fields, later records, events or links.
pub(crate) struct IdsOnlyLayer<S> {
    inner: OpenTelemetryLayer<S, IdsOnlyTracer>,
}

impl<S> std::fmt::Debug for IdsOnlyLayer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdsOnlyLayer").finish_non_exhaustive()
    }
}

impl<S> IdsOnlyLayer<S>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    pub(crate) fn new(sampler: Sampler) -> Self {
        // Timings, thread, source location, level and target only add attributes, which this tracer drops.
        let inner = tracing_opentelemetry::layer()
            .with_tracer(IdsOnlyTracer::new(sampler))
            .with_tracked_inactivity(false)
            .with_threads(false)
            .with_location(false)
            .with_level(false)
            .with_target(false);
        IdsOnlyLayer { inner }
    }
}

impl<S> Layer<S> for IdsOnlyLayer<S>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: LayerContext<'_, S>) {
        // The same span without its fields: the parent is all the ids depend on. An empty field set, not
        // the span's with no values, so that the layer, which sizes the span's attributes by its fields,
        // allocates none.
        let metadata = attrs.metadata();
        let no_fields = FieldSet::new(&[], metadata.callsite());
        let nothing: [(&tracing::field::Field, Option<&dyn tracing::Value>); 0] = [];
        let no_values = no_fields.value_set(&nothing);
        let bare = if attrs.is_root() {
            Attributes::new_root(metadata, &no_values)
        } else if let Some(parent) = attrs.parent() {
            Attributes::child_of(parent.clone(), metadata, &no_values)
        } else {
            Attributes::new(metadata, &no_values)
        };
        self.inner.on_new_span(&bare, id, ctx);
    }

    fn on_enter(&self, id: &Id, ctx: LayerContext<'_, S>) {
        self.inner.on_enter(id, ctx);
    }

    fn on_exit(&self, id: &Id, ctx: LayerContext<'_, S>) {
        self.inner.on_exit(id, ctx);
    }

    fn on_close(&self, id: Id, ctx: LayerContext<'_, S>) {
        self.inner.on_close(id, ctx);
    }

    fn on_record(&self, _id: &Id, _values: &Record<'_>, _ctx: LayerContext<'_, S>) {}

    fn on_follows_from(&self, _id: &Id, _follows: &Id, _ctx: LayerContext<'_, S>) {}

    fn on_event(&self, _event: &Event<'_>, _ctx: LayerContext<'_, S>) {}

    // `OpenTelemetrySpanExt` finds the inner layer by downcasting the subscriber; this hands the inner
    // layer out for every type but this one's own.
    #[allow(unsafe_code, reason = "`downcast_raw` is an unsafe trait method; this only forwards it")]
    unsafe fn downcast_raw(&self, id: TypeId) -> Option<*const ()> {
        if id == TypeId::of::<Self>() {
            return Some(std::ptr::from_ref(self).cast());
        }
        // SAFETY: forwarded as is; the inner layer answers for its own types, and lives as long as `self`.
        unsafe { self.inner.downcast_raw(id) }
    }
}
