//! A filtered layer told of a span's entries, exits and close only when it, or its filter, does
//! something with them.
//!
//! Under a per-layer filter, `tracing-subscriber` looks each span up in the registry at each of those
//! steps, to find whether the filter let the span in, before it calls the layer. The log layer writes no
//! line when a span is entered, exited or closed (it is built without span events), and the ids-only
//! layer has nothing to do when a span closes: those lookups, three or one a span, find nothing to do.
//! A filter with directives that name spans follows their lives ([`SpanFilter`](super::filters)), and is
//! told of every step while it has such a directive.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::span::Id;

use super::around::StepsAround;

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

/// Passes on to a layer under a per-layer filter the steps it acts on and, while its filter follows
/// spans, all of them (in an [`Around`](super::around::Around) the layer).
#[derive(Debug)]
pub(super) struct SpanLife {
    steps: Steps,
    filter_follows_spans: Arc<AtomicBool>,
}

impl SpanLife {
    /// For a layer that acts on `steps`, under a filter that follows spans while `filter_follows_spans`
    /// is set.
    pub(super) fn new(steps: Steps, filter_follows_spans: Arc<AtomicBool>) -> Self {
        SpanLife { steps, filter_follows_spans }
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

impl StepsAround for SpanLife {
    fn on_enter(&self, _id: &Id, enter: impl FnOnce()) {
        if self.tells_entries() {
            enter();
        }
    }

    fn on_exit(&self, _id: &Id, exit: impl FnOnce()) {
        if self.tells_entries() {
            exit();
        }
    }

    fn on_close(&self, _id: &Id, close: impl FnOnce()) {
        if self.tells_close() {
            close();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tracing::span::Attributes;
    use tracing::{Event, Subscriber};
    use tracing_subscriber::filter::filter_fn;
    use tracing_subscriber::layer::{Context, SubscriberExt as _};
    use tracing_subscriber::{Layer, Registry};

    use super::*;
    use crate::telemetry::around::Around;

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
        let subscriber = Registry::default().with(Around::new(layer, SpanLife::new(steps, follows)));
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
