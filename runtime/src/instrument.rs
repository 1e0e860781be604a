//! The future that wraps an async call: enters the span on every poll (never across an `.await`),
//! classifies the output, and records cancellation and panics.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tracing::Span;

use crate::call::Call;
use crate::outcome::Outcome;
use crate::site::Site;

pin_project! {
    /// An async `#[hardened]` call in progress.
    ///
    /// The call starts at the first poll, so a future that is never polled records nothing.
    #[must_use = "futures do nothing unless polled"]
    pub struct Instrumented<F, C> {
        #[pin]
        future: F,
        span: Span,
        site: &'static Site,
        call: Option<Call>,
        started: bool,
        classify: C,
        polling: bool,
    }

    impl<F, C> PinnedDrop for Instrumented<F, C> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(call) = this.call.take() {
                // Still marked as polling: the inner poll unwound, and the executor is now dropping us.
                let outcome = if *this.polling || std::thread::panicking() { Outcome::Panic } else { Outcome::Cancelled };
                call.finish(outcome);
            }
        }
    }
}

impl<F, C, T> Instrumented<F, C>
where
    F: Future,
    C: FnMut(F::Output, &Span) -> (T, Outcome),
{
    /// Wraps `future`, a call of `site`; `classify` applies the outcome rule to its output and returns
    /// the value the caller receives.
    pub fn new(site: &'static Site, span: Span, future: F, classify: C) -> Self {
        Instrumented { future, span, site, call: None, started: false, classify, polling: false }
    }
}

impl<F, C, T> Future for Instrumented<F, C>
where
    F: Future,
    C: FnMut(F::Output, &Span) -> (T, Outcome),
{
    type Output = T;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let this = self.project();
        let _entered = this.span.enter();
        if !*this.started {
            *this.started = true;
            *this.call = Some(Call::start(this.site));
        }
        *this.polling = true;
        let poll = this.future.poll(cx);
        *this.polling = false;
        let Poll::Ready(output) = poll else { return Poll::Pending };
        let (value, outcome) = (this.classify)(output, this.span);
        if let Some(call) = this.call.take() {
            call.finish(outcome);
        }
        Poll::Ready(value)
    }
}
