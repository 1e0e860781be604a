//! The future that wraps an async call: enters the span on every poll (never across an `.await`),
//! classifies the output, and records cancellation and panics; with guards, admits the call first.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tracing::Span;

use crate::call::Call;
use crate::clock;
use crate::guarded::{Admission, GuardedReturn, Permits, Waiting, admission_time, admit};
use crate::guards::SiteGuards;
use crate::outcome::Outcome;
use crate::rejected::Rejected;
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

pin_project! {
    /// An async `#[hardened]` call with a breaker, rate limiter or bulkhead and neither retries nor a
    /// timeout: the guards are taken at the first poll, without a future of their own unless one must
    /// wait, and the call's two readings of the clock serve its metrics and its guards alike.
    ///
    /// Dropped before it completes, the call records `cancelled` and gives its permits back uncounted;
    /// a panic inside a poll records `panic` as it unwinds through that poll.
    #[must_use = "futures do nothing unless polled"]
    pub(crate) struct GuardedInstrumented<F, P, C> {
        #[pin]
        future: F,
        span: Span,
        guards: &'static SiteGuards,
        call: Option<Call>,
        started: bool,
        // When the call started, as the guards read time.
        now: u64,
        permits: Permits,
        waiting: Option<Waiting>,
        is_failure: P,
        classify: C,
    }
}

/// Wraps `future`, a call of the site of `guards`: `is_failure` is the outcome rule as a verdict for the
/// breaker, `classify` applies it to the output (and to a refusal) and returns the value the caller
/// receives.
pub(crate) fn guarded<R, F, P, C, T>(
    guards: &'static SiteGuards,
    span: Span,
    future: F,
    is_failure: P,
    classify: C,
) -> GuardedInstrumented<F, P, C>
where
    R: GuardedReturn,
    F: Future<Output = R>,
    P: Fn(&R) -> bool,
    C: FnMut((R, Option<Outcome>), &Span) -> (T, Outcome),
{
    GuardedInstrumented {
        future,
        span,
        guards,
        call: None,
        started: false,
        now: 0,
        permits: Permits::default(),
        waiting: None,
        is_failure,
        classify,
    }
}

impl<F, P, C, T> Future for GuardedInstrumented<F, P, C>
where
    F: Future,
    F::Output: GuardedReturn,
    P: Fn(&F::Output) -> bool,
    C: FnMut((F::Output, Option<Outcome>), &Span) -> (T, Outcome),
{
    type Output = T;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let this = self.project();
        let _entered = this.span.enter();
        if !*this.started {
            *this.started = true;
            let call = Call::start_timed(this.guards.site(), clock::system());
            let guards = this.guards.resolved();
            *this.now = admission_time(guards, &call, clock::system());
            match admit(guards, *this.now) {
                Admission::Now(permits) => *this.permits = permits,
                Admission::Wait(breaker, waiting) => {
                    this.permits.breaker = breaker;
                    *this.waiting = Some(waiting);
                }
                Admission::Refused(rejected) => return Poll::Ready(refuse(call, rejected, this.classify, this.span)),
            }
            *this.call = Some(call);
        }
        if let Some(waiting) = this.waiting {
            let Poll::Ready(waited) = waiting.as_mut().poll(cx) else { return Poll::Pending };
            *this.waiting = None;
            match waited {
                Ok(bulkhead) => this.permits.bulkhead = bulkhead,
                Err(rejected) => {
                    if let Some(permit) = this.permits.breaker.take() {
                        permit.release();
                    }
                    if let Some(call) = this.call.take() {
                        return Poll::Ready(refuse(call, rejected, this.classify, this.span));
                    }
                }
            }
        }
        let unwinding = UnwindGuard(&mut *this.call);
        let poll = this.future.poll(cx);
        std::mem::forget(unwinding);
        let Poll::Ready(output) = poll else { return Poll::Pending };
        let elapsed = this.call.as_ref().map_or(0, |call| call.elapsed_nanos(clock::system()));
        let failed = (this.is_failure)(&output);
        let counted = std::mem::take(this.permits).settle(failed, *this.now, elapsed);
        let (value, outcome) = (this.classify)((output, None), this.span);
        if let Some(call) = this.call.take() {
            call.finish_after(outcome, elapsed, counted);
        }
        Poll::Ready(value)
    }
}

/// A refused call, recorded, and the value its caller receives.
#[cold]
fn refuse<R: GuardedReturn, T>(
    call: Call,
    rejected: Rejected,
    classify: &mut impl FnMut((R, Option<Outcome>), &Span) -> (T, Outcome),
    span: &Span,
) -> T {
    let (value, outcome) = classify((R::refused(rejected), Some(Outcome::Rejected)), span);
    let elapsed = call.elapsed_nanos(clock::system());
    call.finish_after(outcome, elapsed, None);
    value
}
