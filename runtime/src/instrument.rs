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
    /// Between polls the call is a [`Stage`]; during a poll its state is taken out onto the stack, so a
    /// body that completes at once never writes it back, and the future's drop has one test to make.
    /// Dropped before it completes, the call records `cancelled` and gives its permits back uncounted;
    /// a panic inside a poll drops the state as it unwinds, recording `panic` and, as for a synchronous
    /// call, a failure with the breaker.
    #[must_use = "futures do nothing unless polled"]
    pub(crate) struct GuardedInstrumented<F, P, C> {
        #[pin]
        future: F,
        span: Span,
        guards: &'static SiteGuards,
        stage: Stage,
        is_failure: P,
        classify: C,
    }
}

/// Where a guarded asynchronous call is between two polls.
enum Stage {
    /// Never polled: nothing recorded, nothing held.
    Unstarted,
    /// Admitted; the body is pending.
    Running(InFlight),
    /// Admitted by the breaker; waiting for a token or a bulkhead permit (`wait = ..`).
    Waiting(InFlight, Waiting),
    /// Finished, refused, or being polled.
    Done,
}

/// An admitted call. Dropped unfinished, the [`Call`] records `cancelled` (or `panic`) and the permits go
/// back, each by its own drop.
struct InFlight {
    call: Call,
    /// When the call started, as the guards read time.
    now: u64,
    permits: Permits,
}

/// How a wait for a token or a permit went.
enum Waited {
    Admitted(InFlight),
    Pending,
    Refused(Call, Rejected),
}

/// Polls the wait of an admitted call, putting it back into `stage` while it is pending.
#[cold]
fn wait(mut flight: InFlight, mut waiting: Waiting, stage: &mut Stage, cx: &mut Context<'_>) -> Waited {
    match waiting.as_mut().poll(cx) {
        Poll::Pending => {
            *stage = Stage::Waiting(flight, waiting);
            Waited::Pending
        }
        Poll::Ready(Ok(bulkhead)) => {
            flight.permits.bulkhead = bulkhead;
            Waited::Admitted(flight)
        }
        Poll::Ready(Err(rejected)) => {
            let InFlight { call, permits, .. } = flight;
            if let Some(permit) = permits.breaker {
                permit.release();
            }
            Waited::Refused(call, rejected)
        }
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
    GuardedInstrumented { future, span, guards, stage: Stage::Unstarted, is_failure, classify }
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
        let flight = match std::mem::replace(this.stage, Stage::Done) {
            Stage::Running(flight) => flight,
            Stage::Unstarted => {
                let clock = clock::system();
                let call = Call::start_timed(this.guards.site(), clock);
                let guards = this.guards.resolved();
                let now = admission_time(guards, &call, clock);
                match admit(guards, now) {
                    Admission::Now(permits) => InFlight { call, now, permits },
                    Admission::Wait(breaker, waiting) => {
                        let flight = InFlight { call, now, permits: Permits { breaker, bulkhead: None } };
                        match wait(flight, waiting, this.stage, cx) {
                            Waited::Admitted(flight) => flight,
                            Waited::Pending => return Poll::Pending,
                            Waited::Refused(call, rejected) => {
                                return Poll::Ready(refuse(call, rejected, this.classify, this.span));
                            }
                        }
                    }
                    Admission::Refused(refusal) => {
                        return Poll::Ready(refuse(call, refusal.rejected(), this.classify, this.span));
                    }
                }
            }
            Stage::Waiting(flight, waiting) => match wait(flight, waiting, this.stage, cx) {
                Waited::Admitted(flight) => flight,
                Waited::Pending => return Poll::Pending,
                Waited::Refused(call, rejected) => {
                    return Poll::Ready(refuse(call, rejected, this.classify, this.span));
                }
            },
            Stage::Done => panic!("a `#[hardened]` call polled after it completed"),
        };
        let Poll::Ready(output) = this.future.poll(cx) else {
            *this.stage = Stage::Running(flight);
            return Poll::Pending;
        };
        let InFlight { call, now, permits } = flight;
        let elapsed = call.elapsed_nanos(clock::system());
        let failed = (this.is_failure)(&output);
        let counted = permits.settle(failed, now, elapsed);
        let (value, outcome) = (this.classify)((output, None), this.span);
        call.finish_after(outcome, elapsed, counted);
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
