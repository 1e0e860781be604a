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
    /// The call starts at the first poll, so a future that is never polled records nothing. Dropped
    /// before it completes, the call records `cancelled` (the [`Call`]'s own drop); a panic inside a poll
    /// records `panic` as it unwinds through that poll.
    #[must_use = "futures do nothing unless polled"]
    pub struct Instrumented<F, C> {
        #[pin]
        future: F,
        span: Span,
        site: &'static Site,
        call: Option<Call>,
        started: bool,
        classify: C,
    }
}

/// Records `panic` for the call if a poll unwinds; defused when the poll returns.
struct UnwindGuard<'a>(&'a mut Option<Call>);

impl Drop for UnwindGuard<'_> {
    #[cold]
    fn drop(&mut self) {
        if let Some(call) = self.0.take() {
            call.finish(Outcome::Panic);
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
        Instrumented { future, span, site, call: None, started: false, classify }
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
        let unwinding = UnwindGuard(&mut *this.call);
        let poll = this.future.poll(cx);
        std::mem::forget(unwinding);
        let Poll::Ready(output) = poll else { return Poll::Pending };
        let (value, outcome) = (this.classify)(output, this.span);
        if let Some(call) = this.call.take() {
            call.finish(outcome);
        }
        Poll::Ready(value)
    }
}
