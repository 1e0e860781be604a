//! A layer that forwards everything to the layer it wraps, and lets a [`StepsAround`] stand around the
//! steps of a span's life that reach it (creation, entries, exits, close): the one place `Layer`'s
//! methods are written out for a wrapper.

use std::any::TypeId;

use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Dispatch, Event, Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::Context;

/// What stands around the steps of a span's life: each method gets the step's call to the wrapped
/// layer, to make or not, and to do something before or after it. By default each step is passed on.
pub(crate) trait StepsAround: Send + Sync + 'static {
    /// Span `id` is being created with `attrs`.
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, new: impl FnOnce()) {
        let _ = (attrs, id);
        new();
    }

    /// Span `id` is being entered.
    fn on_enter(&self, id: &Id, enter: impl FnOnce()) {
        let _ = id;
        enter();
    }

    /// Span `id` is being exited.
    fn on_exit(&self, id: &Id, exit: impl FnOnce()) {
        let _ = id;
        exit();
    }

    /// Span `id` has closed.
    fn on_close(&self, id: &Id, close: impl FnOnce()) {
        let _ = id;
        close();
    }
}

/// `inner`, with `around` standing around the steps of spans' lives that reach it.
#[derive(Debug)]
pub(crate) struct Around<L, A> {
    inner: L,
    around: A,
}

impl<L, A> Around<L, A> {
    pub(crate) fn new(inner: L, around: A) -> Self {
        Around { inner, around }
    }
}

impl<S, L, A> Layer<S> for Around<L, A>
where
    S: Subscriber,
    L: Layer<S>,
    A: StepsAround,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        self.inner.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.inner.on_layer(subscriber);
    }

    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        self.inner.register_callsite(metadata)
    }

    fn enabled(&self, metadata: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        self.inner.enabled(metadata, ctx)
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        self.around.on_new_span(attrs, id, || self.inner.on_new_span(attrs, id, ctx));
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        self.inner.max_level_hint()
    }

    fn on_record(&self, span: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        self.inner.on_record(span, values, ctx);
    }

    fn on_follows_from(&self, span: &Id, follows: &Id, ctx: Context<'_, S>) {
        self.inner.on_follows_from(span, follows, ctx);
    }

    fn event_enabled(&self, event: &Event<'_>, ctx: Context<'_, S>) -> bool {
        self.inner.event_enabled(event, ctx)
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        self.inner.on_event(event, ctx);
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        self.around.on_enter(id, || self.inner.on_enter(id, ctx));
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        self.around.on_exit(id, || self.inner.on_exit(id, ctx));
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        self.around.on_close(&id.clone(), || self.inner.on_close(id, ctx));
    }

    fn on_id_change(&self, old: &Id, new: &Id, ctx: Context<'_, S>) {
        self.inner.on_id_change(old, new, ctx);
    }

    // The registry finds a per-layer filter, `OpenTelemetrySpanExt` the OpenTelemetry layer and
    // `set_parent` the ids layer's hook by downcasting the subscriber: the inner layer answers for every
    // type but this one's own.
    #[allow(unsafe_code, reason = "`downcast_raw` is an unsafe trait method; this only forwards it")]
    unsafe fn downcast_raw(&self, id: TypeId) -> Option<*const ()> {
        if id == TypeId::of::<Self>() {
            return Some(std::ptr::from_ref(self).cast());
        }
        // SAFETY: forwarded as is; the inner layer answers for its own types, and lives as long as `self`.
        unsafe { self.inner.downcast_raw(id) }
    }
}
