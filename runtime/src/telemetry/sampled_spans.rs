//! Which spans are in a sampled trace, noted as their OpenTelemetry context starts, so that a finished
//! call tells with one load whether its span can be an exemplar (see
//! [`note_sampled`](crate::metrics::exemplars::note_sampled)).
//!
//! The `tracing-opentelemetry` layer starts a span's context (and asks the sampler) when the span is
//! first entered. [`NotesEntered`] remembers, for the duration of each enter, which span is being
//! entered; [`NotingTracer`] notes that span when the span it builds is sampled. A context started
//! elsewhere (asked of a span not yet entered) is not noted: that span keeps no exemplar, and nothing
//! else changes. (The ids-only layer, which decides a span's context when the span is created, notes it
//! then.)

use std::any::TypeId;
use std::cell::Cell;

use opentelemetry::Context;
use opentelemetry::trace::{Span as _, SpanBuilder, SpanContext, Tracer};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Dispatch, Event, Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context as LayerContext;

use crate::metrics::exemplars;

thread_local! {
    /// The id of the span this thread is entering (its context may be starting), 0 outside an enter.
    static ENTERING: Cell<u64> = const { Cell::new(0) };
}

/// A layer that tells [`NotingTracer`] which span is being entered while `inner` enters it, and forwards
/// everything else to `inner` as it is.
#[derive(Debug)]
pub(crate) struct NotesEntered<L> {
    inner: L,
}

impl<L> NotesEntered<L> {
    pub(crate) fn new(inner: L) -> Self {
        NotesEntered { inner }
    }
}

impl<S, L> Layer<S> for NotesEntered<L>
where
    S: Subscriber,
    L: Layer<S>,
{
    fn on_enter(&self, id: &Id, ctx: LayerContext<'_, S>) {
        ENTERING.set(id.into_u64());
        self.inner.on_enter(id, ctx);
        ENTERING.set(0);
    }

    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        self.inner.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.inner.on_layer(subscriber);
    }

    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        self.inner.register_callsite(metadata)
    }

    fn enabled(&self, metadata: &Metadata<'_>, ctx: LayerContext<'_, S>) -> bool {
        self.inner.enabled(metadata, ctx)
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: LayerContext<'_, S>) {
        self.inner.on_new_span(attrs, id, ctx);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: LayerContext<'_, S>) {
        self.inner.on_record(id, values, ctx);
    }

    fn on_follows_from(&self, id: &Id, follows: &Id, ctx: LayerContext<'_, S>) {
        self.inner.on_follows_from(id, follows, ctx);
    }

    fn event_enabled(&self, event: &Event<'_>, ctx: LayerContext<'_, S>) -> bool {
        self.inner.event_enabled(event, ctx)
    }

    fn on_event(&self, event: &Event<'_>, ctx: LayerContext<'_, S>) {
        self.inner.on_event(event, ctx);
    }

    fn on_exit(&self, id: &Id, ctx: LayerContext<'_, S>) {
        self.inner.on_exit(id, ctx);
    }

    fn on_close(&self, id: Id, ctx: LayerContext<'_, S>) {
        self.inner.on_close(id, ctx);
    }

    fn on_id_change(&self, old: &Id, new: &Id, ctx: LayerContext<'_, S>) {
        self.inner.on_id_change(old, new, ctx);
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        self.inner.max_level_hint()
    }

    // `OpenTelemetrySpanExt` finds the OpenTelemetry layer by downcasting the subscriber: the inner layer
    // answers for every type but this one's own.
    #[allow(unsafe_code, reason = "`downcast_raw` is an unsafe trait method; this only forwards it")]
    unsafe fn downcast_raw(&self, id: TypeId) -> Option<*const ()> {
        if id == TypeId::of::<Self>() {
            return Some(std::ptr::from_ref(self).cast());
        }
        // SAFETY: forwarded as is; the inner layer answers for its own types, and lives as long as `self`.
        unsafe { self.inner.downcast_raw(id) }
    }
}

/// A tracer that builds spans as `inner` does, and notes the span being entered when the span it built
/// is sampled.
#[derive(Debug, Clone)]
pub(crate) struct NotingTracer<T> {
    inner: T,
}

impl<T> NotingTracer<T> {
    pub(crate) fn new(inner: T) -> Self {
        NotingTracer { inner }
    }
}

impl<T: Tracer> Tracer for NotingTracer<T> {
    type Span = T::Span;

    #[inline]
    fn build_with_context(&self, builder: SpanBuilder, parent_cx: &Context) -> T::Span {
        let span = self.inner.build_with_context(builder, parent_cx);
        note_if_sampled(span.span_context());
        span
    }
}

/// Notes the span being entered, if any, as sampled when `built`, the context just started for it, is
/// sampled and exemplars are on.
#[inline]
pub(crate) fn note_if_sampled(built: &SpanContext) {
    if built.is_sampled() {
        note_entering();
    }
}

#[cold]
fn note_entering() {
    let entering = ENTERING.get();
    if entering != 0 && exemplars::enabled() {
        exemplars::note_sampled(&Id::from_u64(entering));
    }
}
