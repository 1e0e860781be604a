//! A filtered layer told of a span's entries, exits and close only when it, or its filter, does
//! something with them.
//!
//! Under a per-layer filter, `tracing-subscriber` looks each span up in the registry at each of those
//! steps, to find whether the filter let the span in, before it calls the layer. The log layer writes no
//! line when a span is entered, exited or closed (it is built without span events), and the ids-only
//! layer has nothing to do when a span closes: those lookups, three or one a span, find nothing to do.
//! A filter with directives that name spans follows their lives ([`SpanFilter`](super::filters)), and is
//! told of every step while it has such a directive.

use std::any::TypeId;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Dispatch, Event, Metadata, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, Layer};

/// The steps of a span's life the wrapped layer itself acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Steps {
    /// None: a log layer without span events.
    None,
    /// Entries and exits: the ids-only layer, which makes a span's context current while it is entered.
    EnterExit,
    /// Every one: an exporter's layer, which ends the span when it closes.
    All,
}

/// `layer`, a layer under a per-layer filter, told of the steps it acts on and, while its filter follows
/// spans, of all of them.
pub(super) struct SpanLife<L> {
    layer: L,
    steps: Steps,
    filter_follows_spans: Arc<AtomicBool>,
}

impl<L> SpanLife<L> {
    /// Wraps `layer`, which acts on `steps`, under a filter that follows spans while
    /// `filter_follows_spans` is set.
    pub(super) fn new(layer: L, steps: Steps, filter_follows_spans: Arc<AtomicBool>) -> Self {
        SpanLife { layer, steps, filter_follows_spans }
    }

    fn filter_follows_spans(&self) -> bool {
        self.filter_follows_spans.load(Ordering::Acquire)
    }

    /// Whether the layer is told that a span was entered or exited.
    fn tells_entries(&self) -> bool {
        self.steps != Steps::None || self.filter_follows_spans()
    }

    /// Whether the layer is told that a span closed.
    fn tells_close(&self) -> bool {
        self.steps == Steps::All || self.filter_follows_spans()
    }
}

impl<S: Subscriber, L: Layer<S>> Layer<S> for SpanLife<L> {
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        self.layer.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.layer.on_layer(subscriber);
    }

    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        self.layer.register_callsite(metadata)
    }

    fn enabled(&self, metadata: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        self.layer.enabled(metadata, ctx)
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        self.layer.on_new_span(attrs, id, ctx);
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        self.layer.max_level_hint()
    }

    fn on_record(&self, span: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        self.layer.on_record(span, values, ctx);
    }

    fn on_follows_from(&self, span: &Id, follows: &Id, ctx: Context<'_, S>) {
        self.layer.on_follows_from(span, follows, ctx);
    }

    fn event_enabled(&self, event: &Event<'_>, ctx: Context<'_, S>) -> bool {
        self.layer.event_enabled(event, ctx)
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        self.layer.on_event(event, ctx);
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if self.tells_entries() {
            self.layer.on_enter(id, ctx);
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        if self.tells_entries() {
            self.layer.on_exit(id, ctx);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if self.tells_close() {
            self.layer.on_close(id, ctx);
        }
    }

    fn on_id_change(&self, old: &Id, new: &Id, ctx: Context<'_, S>) {
        self.layer.on_id_change(old, new, ctx);
    }

    // The registry finds the per-layer filter, and `set_parent` the ids layer's hook, by downcasting.
    #[allow(unsafe_code, reason = "`downcast_raw` is an unsafe trait method")]
    unsafe fn downcast_raw(&self, id: TypeId) -> Option<*const ()> {
        if id == TypeId::of::<Self>() {
            Some(std::ptr::from_ref(self).cast())
        } else {
            // SAFETY: the wrapped layer answers for its own types, as it would unwrapped.
            unsafe { self.layer.downcast_raw(id) }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tracing_subscriber::Registry;
    use tracing_subscriber::filter::filter_fn;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    /// The steps of spans' lives a layer was told of, by name.
    #[derive(Clone, Default)]
    struct Told(Arc<Mutex<Vec<&'static str>>>);

    impl<S: Subscriber> Layer<S> for Told {
        fn on_new_span(&self, _attrs: &Attributes<'_>, _id: &Id, _ctx: Context<'_, S>) {
            self.0.lock().expect("not poisoned").push("new");
        }

        fn on_event(&self, _event: &Event<'_>, _ctx: Context<'_, S>) {
            self.0.lock().expect("not poisoned").push("event");
        }

        fn on_enter(&self, _id: &Id, _ctx: Context<'_, S>) {
            self.0.lock().expect("not poisoned").push("enter");
        }

        fn on_exit(&self, _id: &Id, _ctx: Context<'_, S>) {
            self.0.lock().expect("not poisoned").push("exit");
        }

        fn on_close(&self, _id: Id, _ctx: Context<'_, S>) {
            self.0.lock().expect("not poisoned").push("close");
        }
    }

    /// What a layer acting on `steps` under a per-layer filter is told of a span's life, with an event
    /// inside, when its filter follows spans or not; and that a span the filter turns away tells it nothing.
    fn told(steps: Steps, filter_follows_spans: bool) -> Vec<&'static str> {
        let told = Told::default();
        let layer = told.clone().with_filter(filter_fn(|metadata| metadata.name() != "turned away"));
        let follows = Arc::new(AtomicBool::new(filter_follows_spans));
        let subscriber = Registry::default().with(SpanLife::new(layer, steps, follows));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info_span!("let in").in_scope(|| tracing::info!("inside"));
            tracing::info_span!("turned away").in_scope(|| {});
        });
        told.0.lock().expect("not poisoned").clone()
    }

    #[test]
    fn a_layer_is_told_of_the_steps_it_acts_on_and_of_all_while_its_filter_follows_spans() {
        assert_eq!(told(Steps::None, false), ["new", "event"]);
        assert_eq!(told(Steps::EnterExit, false), ["new", "enter", "event", "exit"]);
        assert_eq!(told(Steps::All, false), ["new", "enter", "event", "exit", "close"]);
        for steps in [Steps::None, Steps::EnterExit, Steps::All] {
            assert_eq!(told(steps, true), ["new", "enter", "event", "exit", "close"], "{steps:?}");
        }
    }
}
