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

use std::cell::Cell;

use opentelemetry::Context;
use opentelemetry::trace::{Span as _, SpanBuilder, SpanContext, Tracer};
use tracing::span::Id;

use super::around::StepsAround;
use crate::metrics::exemplars;

thread_local! {
    /// The id of the span this thread is entering (its context may be starting), 0 outside an enter.
    static ENTERING: Cell<u64> = const { Cell::new(0) };
}

/// Tells [`NotingTracer`] which span is being entered while the layer it stands around (the
/// OpenTelemetry layer, in an [`Around`](super::around::Around)) enters it.
#[derive(Debug)]
pub(crate) struct NotesEntered;

impl StepsAround for NotesEntered {
    fn on_enter(&self, id: &Id, enter: impl FnOnce()) {
        ENTERING.set(id.into_u64());
        enter();
        ENTERING.set(0);
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
