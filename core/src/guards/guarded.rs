//! The guard chain around one call, in the documented order:
//! retry, then circuit breaker, then rate limiter, then timeout, then the guards that hold a permit for
//! the call (concurrency limit, then bulkhead: the kinds whose [`GuardKind::HOLDS`] is true, in the order
//! of the list of kinds), then the body.
//!
//! A refusal by an inner guard (rate limiter, concurrency limit, bulkhead) gives the breaker's permit back
//! uncounted: it says nothing about the dependency. A timeout counts as a failure. Retries never repeat a
//! refusal by the breaker, the concurrency limit or the bulkhead.
//!
//! [`GuardKind::HOLDS`]: crate::kind::GuardKind::HOLDS

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tracing::Span;

use crate::breaker::{BreakerPermit, CircuitBreaker, Verdict};
use crate::clock::{self, SystemClock, system_nanos};
use crate::events;
use crate::guards::call::Call;
use crate::guards::held::{self, Held, HeldPermit, HeldPermits};
use crate::guards::shards;
use crate::guards::site::{Resolved, Site, SiteGuards};
use crate::outcome::Outcome;
use crate::rate_limit::RateLimiter;
use crate::rejected::Rejected;
use crate::slots::Slots;

/// The error half of a guarded function's `Result`, which a refusal converts into.
#[diagnostic::on_unimplemented(
    message = "a function with guards must return `Result<T, E>` where `E: From<hardened::Rejected>`; `{Self}` has no `From<hardened::Rejected>`",
    label = "this error type cannot hold a refusal by a guard",
    note = "add `impl From<hardened::Rejected> for {Self}` (or a `#[from] Rejected` variant with thiserror)"
)]
pub trait FromRejection {
    /// The error standing for a refusal.
    fn from_rejection(rejected: Rejected) -> Self;
}

#[diagnostic::do_not_recommend]
impl<E: From<Rejected>> FromRejection for E {
    #[inline]
    fn from_rejection(rejected: Rejected) -> Self {
        E::from(rejected)
    }
}

/// Return types a guard can refuse into: `Result<T, E>` with `E: From<hardened::Rejected>`.
#[diagnostic::on_unimplemented(
    message = "a function with guards must return `Result<T, E>` where `E: From<hardened::Rejected>`, not `{Self}`",
    label = "a guard has no way to refuse a call returning this",
    note = "a refusal (open breaker, exhausted rate limit, full bulkhead, timeout) is returned as `Err(E::from(hardened::Rejected))`"
)]
pub trait GuardedReturn: Sized {
    /// The error type.
    type Error;
    /// The value standing for a refusal.
    fn refused(rejected: Rejected) -> Self;
    /// The error, if this is one.
    fn error(&self) -> Option<&Self::Error>;
}

impl<T, E: FromRejection> GuardedReturn for Result<T, E> {
    type Error = E;

    #[inline]
    fn refused(rejected: Rejected) -> Self {
        Err(E::from_rejection(rejected))
    }

    #[inline]
    fn error(&self) -> Option<&E> {
        self.as_ref().err()
    }
}

/// A value, and the outcome a guard imposed on it (refused, timed out), if any.
pub type Guarded<R> = (R, Option<Outcome>);

/// Waiting for a rate limiter's token or a held guard's permit, then taking the permits: the rare path of
/// an admission, boxed so that the future of every call does not carry its state.
pub(crate) type Waiting = Pin<Box<dyn Future<Output = Result<HeldPermit, Rejected>> + Send + Sync>>;

/// The permits an admitted call holds until it ends.
#[derive(Debug)]
pub(crate) struct Permits {
    pub(crate) breaker: Option<BreakerPermit<'static>>,
    pub(crate) held: HeldPermit,
}

impl Permits {
    /// Reports a call that took `elapsed` nanoseconds to the breaker (from the time its permit was
    /// taken at), and gives the held permit back, telling an adaptive limit of the round trip; returns the
    /// breaker and the result it saw, for the call to count.
    #[inline(always)]
    #[allow(clippy::inline_always, reason = "measured: out of line, the permits went through memory")]
    #[must_use]
    pub(crate) fn settle(self, failed: bool, elapsed: u64) -> Option<(&'static CircuitBreaker, Verdict)> {
        let counted = BreakerPermit::settle_held(self.breaker, failed, elapsed);
        held::give_back_after(self.held, elapsed);
        counted
    }
}

/// How the guards took an asynchronous call.
pub(crate) enum Admission {
    /// Admitted at once.
    Now(Permits),
    /// Admitted by the breaker; the rate limiter or a held guard makes the call wait (`wait = ..`).
    Wait(Option<BreakerPermit<'static>>, Waiting),
    /// Refused by the rate limiter or a held guard; the breaker's permit went back uncounted.
    Refused(Refusal),
}

/// A refusal as the admission returns it: which guard refused, small enough to stay in registers on the
/// path that admits, and spelled out as a [`Rejected`] only when it is reported. The guard has counted it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Refusal {
    /// The breaker is open, or has no probe left.
    Breaker(&'static CircuitBreaker),
    /// The limiter has no token for this many nanoseconds.
    Rate(&'static RateLimiter, u64),
    /// The slots of a held guard (concurrency limit, bulkhead) are full; the refusal is counted when it
    /// is spelled out.
    Full(&'static Slots),
}

impl Refusal {
    /// What the caller receives.
    #[cold]
    #[must_use]
    pub(crate) fn rejected(self) -> Rejected {
        match self {
            Refusal::Breaker(breaker) => breaker.open_refusal(),
            Refusal::Rate(limiter, retry_after) => limiter.refusal(retry_after),
            Refusal::Full(slots) => slots.refusal(),
        }
    }
}

/// The breaker's permit, if the site has a breaker.
#[inline]
pub(crate) fn breaker_permit(guards: &'static Resolved, now: u64) -> Result<Option<BreakerPermit<'static>>, Refusal> {
    match guards.breaker {
        Some(breaker) => match breaker.admit_at(now) {
            Some(permit) => Ok(Some(permit)),
            None => Err(Refusal::Breaker(breaker)),
        },
        None => Ok(None),
    }
}

/// A call refused by a guard inside the breaker: the breaker's permit goes back uncounted, since the
/// refusal says nothing about the dependency. The one place that rule is written.
#[cold]
pub(crate) fn release(breaker: Option<BreakerPermit<'static>>) {
    if let Some(permit) = breaker {
        permit.release();
    }
}

/// [`release`], passing the refusal on.
#[cold]
fn refused_inside(breaker: Option<BreakerPermit<'static>>, refusal: Refusal) -> Refusal {
    release(breaker);
    refusal
}

/// Admits a call at `now` (as `clock::system_nanos` reads time) through its breaker, rate limiter and
/// held guards, in that order, refusing at once when one has nothing free.
#[inline]
pub(crate) fn admit_at_once(guards: &'static Resolved, now: u64) -> Result<Permits, Refusal> {
    let breaker = breaker_permit(guards, now)?;
    if let Some(limiter) = guards.rate
        && let Err(retry_after) = limiter.admit_at(now)
    {
        return Err(refused_inside(breaker, Refusal::Rate(limiter, retry_after)));
    }
    match held::take_one(&guards.held) {
        Ok(held) => Ok(Permits { breaker, held }),
        Err(full) => Err(refused_inside(breaker, Refusal::Full(full))),
    }
}

/// The limiter's token and the held guard's permit of an asynchronous call, when both are free at once;
/// otherwise whether the token was taken (`Err(rated)`), for `admit_rest` to wait or refuse.
#[inline(always)]
#[allow(clippy::inline_always, reason = "the first poll's fast path, kept in registers")]
pub(crate) fn take_free(guards: &'static Resolved, now: u64) -> Result<HeldPermit, bool> {
    if let Some(limiter) = guards.rate
        && !limiter.take_now(now)
    {
        return Err(false);
    }
    held::take_one(&guards.held).map_err(|_| true)
}

/// The rest of an asynchronous admission that the breaker granted (`breaker`) and that found no token
/// (`rated` false) or, with its token, not every held guard's permit at once: a limiter or held guard
/// configured to wait hands back the wait to do instead of refusing. The path that finds everything free
/// stays inline in the call's future.
#[cold]
pub(crate) fn admit_rest(
    guards: &'static Resolved,
    now: u64,
    breaker: Option<BreakerPermit<'static>>,
    rated: bool,
) -> Admission {
    if !rated && let Some(limiter) = guards.rate {
        if limiter.waits() {
            return Admission::Wait(breaker, Box::pin(wait_and_take(Some(limiter), &guards.held, now)));
        }
        if let Err(retry_after) = limiter.admit_at(now) {
            return Admission::Refused(refused_inside(breaker, Refusal::Rate(limiter, retry_after)));
        }
    }
    match held::take_one(&guards.held) {
        Ok(held) => Admission::Now(Permits { breaker, held }),
        Err(full) if full.waits() => Admission::Wait(breaker, Box::pin(wait_and_take(None, &guards.held, now))),
        Err(full) => Admission::Refused(refused_inside(breaker, Refusal::Full(full))),
    }
}

/// Waits for the limiter's token (asked for at `now`), if `limiter` is given, then for the held guard's
/// permit, up to its wait.
async fn wait_and_take(
    limiter: Option<&'static RateLimiter>,
    held: &'static Held,
    now: u64,
) -> Result<HeldPermit, Rejected> {
    if let Some(limiter) = limiter {
        limiter.acquire_at(now).await?;
    }
    held::acquire_one(held).await
}

/// The time the breaker and the rate limiter share for one call, from the call's own first reading of
/// the clock (guards made by the registry read the system clock). Converted whichever guards the site
/// has: a test for the two that read it would cost about as much as the conversion.
#[inline]
#[must_use]
pub(crate) fn admission_time(call: &Call, clock: &SystemClock) -> u64 {
    call.started_nanos(clock)
}

/// Runs a synchronous call of `guards`' site through its breaker, rate limiter (refusing at once) and
/// held guards (never waiting), and records it: one reading of the clock at each end serves the metrics
/// and the guards. Returns the value and its outcome: `classify`'s verdict, or `rejected`. The call's
/// `span`, when its trace is sampled, becomes an exemplar of the call's duration.
#[inline]
pub fn run_sync<R: GuardedReturn>(
    guards: &'static SiteGuards,
    body: impl FnOnce() -> R,
    is_failure: impl Fn(&R) -> bool,
    classify: impl FnOnce(&R) -> Outcome,
    span: &Span,
) -> (R, Outcome) {
    let clock = clock::system();
    let call = Call::start_timed(guards.site(), clock);
    let resolved = guards.resolved();
    let now = admission_time(&call, clock);
    let permits = match admit_at_once(resolved, now) {
        Ok(permits) => permits,
        Err(refusal) => return refused(call, refusal.rejected()),
    };
    let value = body();
    let elapsed = call.elapsed_nanos(clock);
    let counted = permits.settle(is_failure(&value), elapsed);
    let outcome = classify(&value);
    crate::guards::exemplars::offer_if_on(guards.site(), elapsed, span);
    call.finish_after(outcome, elapsed, counted);
    (value, outcome)
}

/// A refused call, recorded.
#[cold]
pub(crate) fn refused<R: GuardedReturn>(call: Call, rejected: Rejected) -> (R, Outcome) {
    events::refused(Some(call.site().name()), &rejected);
    let elapsed = call.elapsed_nanos(clock::system());
    call.finish_after(Outcome::Rejected, elapsed, None);
    (R::refused(rejected), Outcome::Rejected)
}

/// What the caller of an attempt (of `site`, if it has one) that a guard refused or its timeout abandoned
/// receives, with `outcome` imposed; told to the guard events.
#[cold]
pub(crate) fn imposed<R: GuardedReturn>(
    site: Option<&'static Site>,
    rejected: Rejected,
    outcome: Outcome,
) -> Guarded<R> {
    events::refused(site.map(Site::name), &rejected);
    (R::refused(rejected), Some(outcome))
}

/// Runs one attempt of an asynchronous call through the breaker, rate limiter, timeout and held guards:
/// the path of a call that retries or has a timeout (the others run as one `GuardedInstrumented`). A call
/// with a timeout and no retries is one attempt, which may move the function's arguments; a retried
/// call's attempts are made by [`next_attempt`](super::retrying::next_attempt).
///
/// `body` makes the attempt's future where it is awaited, so that the future is held once, inside the
/// attempt's: a future handed in by value would be held twice (as the argument, then as what is awaited),
/// and again by each guard wrapped around it.
pub fn attempt<R, F, Fut>(
    guards: &'static SiteGuards,
    body: F,
    is_failure: impl Fn(&R) -> bool,
) -> impl Future<Output = Guarded<R>>
where
    R: GuardedReturn,
    F: FnOnce() -> Fut,
    Fut: Future<Output = R>,
{
    attempt_through(guards.resolved(), guards.timeout(), Some(guards.site()), body, is_failure)
}

/// [`attempt`] through `resolved` and `timeout`, for the call site `site` (which counts its timeouts and
/// names the function in guard events) or for guards that have none (a tower layer's).
pub(crate) async fn attempt_through<R, F, Fut>(
    resolved: &'static Resolved,
    timeout: Option<Duration>,
    site: Option<&'static Site>,
    body: F,
    is_failure: impl Fn(&R) -> bool,
) -> Guarded<R>
where
    R: GuardedReturn,
    F: FnOnce() -> Fut,
    Fut: Future<Output = R>,
{
    let now = if resolved.breaker.is_some() || resolved.rate.is_some() { system_nanos() } else { 0 };
    let breaker = match breaker_permit(resolved, now) {
        Ok(breaker) => breaker,
        Err(refusal) => return imposed(site, refusal.rejected(), Outcome::Rejected),
    };
    if let Some(limiter) = resolved.rate
        && let Err(rejected) = limiter.acquire_at(now).await
    {
        release(breaker);
        return imposed(site, rejected, Outcome::Rejected);
    }
    // The timeout covers the wait for the held guards' permits and the body.
    // Whether the timeout, if it fires, finds the call holding its permits. An atomic: the future is `Send`.
    let holding = std::sync::atomic::AtomicBool::new(false);
    // Made where it is awaited (a closure, not a future held in a variable), so that the attempt's future
    // holds the body once.
    let bounded = || async {
        let held = match HeldPermits::acquire(&resolved.held).await {
            Ok(held) => held,
            Err(rejected) => return imposed(site, rejected, Outcome::Rejected),
        };
        holding.store(true, std::sync::atomic::Ordering::Relaxed);
        // The clock is read for limits that learn from round trips only.
        let observed = resolved.held.iter().map_while(|slots| *slots).any(Slots::observed);
        let granted = if observed { system_nanos() } else { 0 };
        let value = body().await;
        held.give_back_after(if observed { system_nanos().saturating_sub(granted) } else { 0 });
        (value, None)
    };
    let (value, imposed) = if let Some(after) = timeout {
        tokio::time::timeout(after, bounded()).await.unwrap_or_else(|_| {
            if let Some(site) = site {
                shards::record_timeout(site);
            }
            if holding.load(std::sync::atomic::Ordering::Relaxed) {
                dropped_while_held(&resolved.held, after);
            }
            imposed(site, Rejected::TimedOut { after }, Outcome::Timeout)
        })
    } else {
        bounded().await
    };
    if breaker.is_some() {
        let failed = match imposed {
            Some(Outcome::Timeout) => true,
            Some(_) => {
                release(breaker);
                return (value, imposed);
            }
            None => is_failure(&value),
        };
        // Settled as every call is; the held permits went back with the bounded future. With no `Call` of
        // its own to count it with, the breaker counts the result in its shared cells.
        let permits = Permits { breaker, held: None };
        if let Some((breaker, result)) = permits.settle(failed, system_nanos().saturating_sub(now)) {
            breaker.count_shared(result);
        }
    }
    (value, imposed)
}

/// Tells the adaptive limits among `held` that a call holding their permits timed out after `after`:
/// a dropped call, which lowers them.
#[cold]
fn dropped_while_held(held: &Held, after: std::time::Duration) {
    for slots in held.iter().map_while(|slots| *slots) {
        slots.observe(clock::duration_nanos(after), true);
    }
}

/// Replaces a failed call's error by what its `fallback` returns.
#[inline]
pub fn apply_fallback<T, E, F: Fallback<T, E>>(value: Result<T, E>, fallback: &F) -> Result<T, E> {
    match value {
        Ok(value) => Ok(value),
        Err(error) => fallback.recover(error),
    }
}

/// A function that turns a failed call's error into the call's result (`fallback = path`).
#[diagnostic::on_unimplemented(
    message = "`fallback` needs a function `fn({E}) -> Result<{T}, {E}>`",
    label = "this is not a `fn({E}) -> Result<{T}, {E}>`",
    note = "the fallback receives the error of a failed or refused call and returns what the caller gets instead"
)]
pub trait Fallback<T, E> {
    /// The result to return instead of `error`.
    fn recover(&self, error: E) -> Result<T, E>;
}

#[diagnostic::do_not_recommend]
impl<T, E, F: Fn(E) -> Result<T, E>> Fallback<T, E> for F {
    #[inline]
    fn recover(&self, error: E) -> Result<T, E> {
        self(error)
    }
}
