//! The future that wraps an async call: enters the span on every poll (never across an `.await`),
//! classifies the output, and records cancellation and panics; with guards, admits the call first.

use std::future::Future;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tracing::Span;

use crate::breaker::BreakerPermit;
use crate::clock::{self, SystemClock};
use crate::guards::SiteGuards;
use crate::guards::call::Call;
use crate::guards::guarded::{
    Admission, GuardedReturn, Permits, Waiting, admission_time, admit_rest, breaker_permit, release, take_free,
};
use crate::guards::held;
use crate::guards::site::Site;
use crate::outcome::Outcome;
use crate::rejected::Rejected;

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
            call.finish_unobserved(Outcome::Panic);
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
            call.finish(outcome, this.span);
        }
        Poll::Ready(value)
    }
}

pin_project! {
    /// An async `#[hardened]` call with a breaker, rate limiter, concurrency limit or bulkhead and
    /// neither retries nor a timeout: the guards are taken at the first poll, without a future of their
    /// own unless one must wait, and the call's two readings of the clock serve its metrics and its guards alike.
    ///
    /// The span and the body's future are made at the first poll too, by the closure the call starts
    /// as, so that the span's parent is the span current where the call is first polled, as it is for
    /// an `async fn`, and a future never polled makes no span. The generated function returns this
    /// future itself: an `async fn` around it would hold it and move it, for nothing.
    ///
    /// Between polls the call is a [`Stage`]; during a poll its state is taken out onto the stack, so a
    /// body that completes at once never writes it back, and the future's drop has one test to make.
    /// Dropped before it completes, the call records `cancelled` and gives its permits back uncounted;
    /// a panic inside a poll drops the state as it unwinds, recording `panic` and, as for a synchronous
    /// call, a failure with the breaker.
    #[must_use = "futures do nothing unless polled"]
    pub(crate) struct GuardedInstrumented<S, F, P, C> {
        #[pin]
        future: Option<F>,
        span: Span,
        guards: &'static SiteGuards,
        // Dropped by hand, and only when the call did not finish: the drop of a finished call tests
        // one tag inline.
        stage: ManuallyDrop<Stage<S>>,
        is_failure: P,
        classify: C,
    }

    impl<S, F, P, C> PinnedDrop for GuardedInstrumented<S, F, P, C> {
        #[inline]
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if !matches!(**this.stage, Stage::Done) {
                abandon(this.future, this.span, &mut **this.stage);
            }
        }
    }
}

/// Drops what an unfinished call holds, in the order of the fields: the body's future, the span, then
/// the call and its permits (recording `cancelled`, giving the permits back uncounted).
#[cold]
fn abandon<S, F>(mut future: Pin<&mut Option<F>>, span: &mut Span, stage: &mut Stage<S>) {
    future.set(None);
    drop(std::mem::replace(span, Span::none()));
    drop(std::mem::replace(stage, Stage::Done));
}

/// Where a guarded asynchronous call is between two polls.
#[repr(u8)]
enum Stage<S> {
    /// Never polled: nothing made, recorded or held; `S` makes the span and the body's future.
    Unstarted(S),
    /// Admitted; the body is pending.
    Running(InFlight),
    /// Admitted by the breaker; waiting for a token or a held guard's permit (`wait = ..`).
    Waiting(InFlight, Waiting),
    /// Finished, refused, or being polled.
    Done,
}

/// An admitted call. Dropped unfinished, the [`Call`] records `cancelled` (or `panic`) and the permits go
/// back, each by its own drop.
struct InFlight {
    call: Call,
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
fn wait<S>(mut flight: InFlight, mut waiting: Waiting, stage: &mut Stage<S>, cx: &mut Context<'_>) -> Waited {
    match waiting.as_mut().poll(cx) {
        Poll::Pending => {
            *stage = Stage::Waiting(flight, waiting);
            Waited::Pending
        }
        Poll::Ready(Ok(held)) => {
            // The round trip the call reports at its end counts from its start: its wait is not the
            // dependency's.
            held::waited(&held, flight.call.elapsed_nanos(clock::system()));
            flight.permits.held = held;
            Waited::Admitted(flight)
        }
        Poll::Ready(Err(rejected)) => {
            let InFlight { call, permits, .. } = flight;
            release(permits.breaker);
            Waited::Refused(call, rejected)
        }
    }
}

/// An asynchronous call of the site of `guards`, which has a breaker, a rate limiter or a held guard but
/// neither retries nor a timeout, as one future: at its first poll, `start` makes the span and the body's
/// future, and the guards are taken, without a future of their own unless one must wait; its two readings
/// of the clock serve its metrics and its guards alike. `is_failure` is the outcome rule as the breaker's
/// verdict; `classify` applies it to the output (or to a refusal) and returns the value the caller
/// receives.
pub fn instrument<R, S, F, P, C, T>(
    guards: &'static SiteGuards,
    start: S,
    is_failure: P,
    classify: C,
) -> impl Future<Output = T> + use<R, S, F, P, C, T>
where
    R: GuardedReturn,
    S: FnOnce() -> (Span, F),
    F: Future<Output = R>,
    P: Fn(&R) -> bool,
    C: FnMut((R, Option<Outcome>), &Span) -> (T, Outcome),
{
    GuardedInstrumented {
        future: None,
        span: Span::none(),
        guards,
        stage: ManuallyDrop::new(Stage::Unstarted(start)),
        is_failure,
        classify,
    }
}

impl<S, F, P, C, T> Future for GuardedInstrumented<S, F, P, C>
where
    S: FnOnce() -> (Span, F),
    F: Future,
    F::Output: GuardedReturn,
    P: Fn(&F::Output) -> bool,
    C: FnMut((F::Output, Option<Outcome>), &Span) -> (T, Outcome),
{
    type Output = T;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut this = self.project();
        let stage: &mut Stage<S> = this.stage;
        match std::mem::replace(stage, Stage::Done) {
            Stage::Unstarted(start) => {
                let (span, future) = start();
                // The span it replaces is `Span::none()`, which holds nothing: no drop to test for.
                std::mem::forget(std::mem::replace(this.span, span));
                this.future.set(Some(future));
                let _entered = this.span.enter();
                let clock = clock::system();
                let call = Call::start_timed(this.guards.site(), clock);
                let guards = this.guards.resolved();
                let now = admission_time(&call, clock);
                let breaker = match breaker_permit(guards, now) {
                    Ok(breaker) => breaker,
                    Err(refusal) => return Poll::Ready(refuse(call, refusal.rejected(), this.classify, this.span)),
                };
                let held = match take_free(guards, now) {
                    Ok(held) => held,
                    Err(rated) => {
                        let polled = Polled::new(this.future, stage, this.is_failure, this.classify, this.span);
                        return polled.start_slowly(call, now, breaker, rated, this.guards, cx);
                    }
                };
                let polled = Polled::new(this.future, stage, this.is_failure, this.classify, this.span);
                polled.run(call, clock, Permits { breaker, held }, cx)
            }
            Stage::Running(InFlight { call, permits }) => {
                let _entered = this.span.enter();
                let polled = Polled::new(this.future, stage, this.is_failure, this.classify, this.span);
                polled.run(call, clock::system(), permits, cx)
            }
            Stage::Waiting(flight, waiting) => {
                let _entered = this.span.enter();
                let polled = Polled::new(this.future, stage, this.is_failure, this.classify, this.span);
                polled.wait_then_run(flight, waiting, cx)
            }
            Stage::Done => panic!("a `#[hardened]` call polled after it completed"),
        }
    }
}

/// The parts of a [`GuardedInstrumented`] that a poll works with once it has taken the call's state out
/// of the stage, borrowed apart.
struct Polled<'a, S, F, P, C, T> {
    future: Pin<&'a mut Option<F>>,
    stage: &'a mut Stage<S>,
    is_failure: &'a P,
    classify: &'a mut C,
    span: &'a Span,
    value: PhantomData<fn() -> T>,
}

impl<'a, S, F, P, C, T> Polled<'a, S, F, P, C, T>
where
    F: Future,
    F::Output: GuardedReturn,
    P: Fn(&F::Output) -> bool,
    C: FnMut((F::Output, Option<Outcome>), &Span) -> (T, Outcome),
{
    #[inline(always)]
    #[allow(clippy::inline_always, reason = "on every poll's path: its parts stay in registers")]
    fn new(
        future: Pin<&'a mut Option<F>>,
        stage: &'a mut Stage<S>,
        is_failure: &'a P,
        classify: &'a mut C,
        span: &'a Span,
    ) -> Self {
        Polled { future, stage, is_failure, classify, span, value: PhantomData }
    }

    /// The first poll of a call that the breaker admitted and that found no token (`rated` false) or no
    /// held guard's permit at once: it waits, or is refused, or is admitted after all.
    #[cold]
    fn start_slowly(
        self,
        call: Call,
        now: u64,
        breaker: Option<BreakerPermit<'static>>,
        rated: bool,
        guards: &'static SiteGuards,
        cx: &mut Context<'_>,
    ) -> Poll<T> {
        match admit_rest(guards.resolved(), now, breaker, rated) {
            Admission::Now(permits) => self.run(call, clock::system(), permits, cx),
            Admission::Wait(breaker, waiting) => {
                let flight = InFlight { call, permits: Permits { breaker, held: None } };
                self.wait_then_run(flight, waiting, cx)
            }
            Admission::Refused(refusal) => Poll::Ready(refuse(call, refusal.rejected(), self.classify, self.span)),
        }
    }

    /// Polls the wait of an admitted call and, once it has its token and permit, its body; the call goes
    /// back into the stage while either is pending.
    #[cold]
    fn wait_then_run(self, flight: InFlight, waiting: Waiting, cx: &mut Context<'_>) -> Poll<T> {
        match wait(flight, waiting, self.stage, cx) {
            Waited::Admitted(InFlight { call, permits }) => self.run(call, clock::system(), permits, cx),
            Waited::Pending => Poll::Pending,
            Waited::Refused(call, rejected) => Poll::Ready(refuse(call, rejected, self.classify, self.span)),
        }
    }

    /// Polls the body of an admitted call (inside its span) and, when it completes, settles the permits
    /// and records the call; the call goes back into the stage while the body is pending.
    #[inline(always)]
    #[allow(clippy::inline_always, reason = "one copy per stage it resumes from, each with its state in registers")]
    fn run(self, call: Call, clock: &SystemClock, permits: Permits, cx: &mut Context<'_>) -> Poll<T> {
        let Some(future) = self.future.as_pin_mut() else { panic!("a `#[hardened]` call admitted without its body") };
        let Poll::Ready(output) = future.poll(cx) else {
            *self.stage = Stage::Running(InFlight { call, permits });
            return Poll::Pending;
        };
        let elapsed = call.elapsed_nanos(clock);
        let failed = (self.is_failure)(&output);
        let counted = permits.settle(failed, elapsed);
        let (value, outcome) = (self.classify)((output, None), self.span);
        crate::guards::exemplars::offer_if_on(call.site(), elapsed, self.span);
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
    crate::events::refused(Some(call.site().name()), &rejected);
    let (value, outcome) = classify((R::refused(rejected), Some(Outcome::Rejected)), span);
    let elapsed = call.elapsed_nanos(clock::system());
    call.finish_after(outcome, elapsed, None);
    value
}
