//! The guard chain around one call, in the documented order:
//! retry, then circuit breaker, then rate limiter, then timeout, then bulkhead, then the body.
//!
//! A refusal by an inner guard (rate limiter, bulkhead) gives the breaker's permit back uncounted: it says
//! nothing about the dependency. A timeout counts as a failure. Retries never repeat a refusal by the
//! breaker or the bulkhead.

use std::future::Future;
use std::time::Duration;

use crate::breaker::BreakerPermit;
use crate::bulkhead::{Bulkhead, BulkheadPermit};
use crate::clock::system_nanos;
use crate::guards::SiteGuards;
use crate::metrics::shards;
use crate::outcome::Outcome;
use crate::rejected::Rejected;

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

/// The time the breaker and the rate limiter share for one call: guards made by the registry read the
/// system clock, so one reading serves both, and none is taken when neither is there.
#[inline]
fn admission_time(guards: &'static SiteGuards) -> u64 {
    if guards.breaker().is_some() || guards.rate_limiter().is_some() { system_nanos() } else { 0 }
}

/// The breaker's permit, if the site has a breaker.
#[inline]
fn breaker_permit(guards: &'static SiteGuards, now: u64) -> Result<Option<BreakerPermit<'static>>, Rejected> {
    guards.breaker().map(|breaker| breaker.try_acquire_at(now)).transpose()
}

/// A call refused by a guard inside the breaker: the breaker's permit goes back uncounted.
fn refused_inside<R: GuardedReturn>(permit: Option<BreakerPermit<'static>>, rejected: Rejected) -> Guarded<R> {
    if let Some(permit) = permit {
        permit.release();
    }
    (R::refused(rejected), Some(Outcome::Rejected))
}

/// Runs a synchronous call through its breaker, rate limiter (refusing at once) and bulkhead (never waiting).
#[inline]
pub fn run_sync<R: GuardedReturn>(
    guards: &'static SiteGuards,
    body: impl FnOnce() -> R,
    is_failure: impl Fn(&R) -> bool,
) -> Guarded<R> {
    let now = admission_time(guards);
    let permit = match breaker_permit(guards, now) {
        Ok(permit) => permit,
        Err(rejected) => return (R::refused(rejected), Some(Outcome::Rejected)),
    };
    let admitted = guards
        .rate_limiter()
        .map_or(Ok(()), |limiter| limiter.try_acquire_at(now))
        .and_then(|()| guards.bulkhead().map(Bulkhead::try_acquire).transpose());
    let _bulkhead: Option<BulkheadPermit<'static>> = match admitted {
        Ok(bulkhead) => bulkhead,
        Err(rejected) => return refused_inside(permit, rejected),
    };
    let value = body();
    if let Some(permit) = permit {
        permit.record_at(is_failure(&value), system_nanos());
    }
    (value, None)
}

/// Runs one attempt of an asynchronous call through the breaker, rate limiter, timeout and bulkhead.
pub async fn attempt<R, Fut>(guards: &'static SiteGuards, body: Fut, is_failure: impl Fn(&R) -> bool) -> Guarded<R>
where
    R: GuardedReturn,
    Fut: Future<Output = R>,
{
    let now = admission_time(guards);
    let permit = match breaker_permit(guards, now) {
        Ok(permit) => permit,
        Err(rejected) => return (R::refused(rejected), Some(Outcome::Rejected)),
    };
    if let Some(limiter) = guards.rate_limiter()
        && let Err(rejected) = limiter.acquire_at(now).await
    {
        return refused_inside(permit, rejected);
    }
    let bounded = async {
        let _bulkhead = match guards.bulkhead() {
            Some(bulkhead) => match bulkhead.acquire().await {
                Ok(held) => Some(held),
                Err(rejected) => return (R::refused(rejected), Some(Outcome::Rejected)),
            },
            None => None,
        };
        (body.await, None)
    };
    let (value, imposed) = if let Some(after) = guards.timeout() {
        tokio::time::timeout(after, bounded).await.unwrap_or_else(|_| {
            shards::record_timeout(guards.site());
            (R::refused(Rejected::TimedOut { after }), Some(Outcome::Timeout))
        })
    } else {
        bounded.await
    };
    if let Some(permit) = permit {
        match imposed {
            Some(Outcome::Timeout) => permit.record_at(true, system_nanos()),
            Some(_) => permit.release(),
            None => permit.record_at(is_failure(&value), system_nanos()),
        }
    }
    (value, imposed)
}

/// Opens a call's account with its retry policy (each call adds its share to the budget).
#[inline]
pub fn retry_start(guards: &'static SiteGuards) {
    if let Some(policy) = guards.retry() {
        policy.deposit();
    }
}

/// Whether attempt number `retries + 1` should follow, and after how long.
///
/// Refusals by the breaker, the rate limiter and the bulkhead are never retried; timeouts are; other
/// failures are when `retry_when` agrees.
pub fn retry_delay<R: GuardedReturn>(
    guards: &'static SiteGuards,
    value: &R,
    imposed: Option<Outcome>,
    retries: u32,
    is_failure: impl Fn(&R) -> bool,
    retry_when: impl Fn(&R) -> bool,
) -> Option<Duration> {
    let policy = guards.retry()?;
    let retryable = match imposed {
        Some(Outcome::Timeout) => true,
        Some(_) => false,
        None => value.error().is_some() && is_failure(value) && retry_when(value),
    };
    if !retryable {
        return None;
    }
    let delay = policy.next_delay(retries, None)?;
    shards::record_retry(guards.site());
    Some(delay)
}

/// Waits between two attempts.
pub async fn backoff(delay: Duration) {
    tokio::time::sleep(delay).await;
}

/// A function that says whether an error is worth retrying (`retry(when = path)`).
#[diagnostic::on_unimplemented(
    message = "`retry(when = ..)` needs a function `fn(&{E}) -> bool`",
    label = "this is not a `fn(&{E}) -> bool`",
    note = "the function receives the error of a failed attempt and says whether to try again"
)]
pub trait RetryPredicate<E> {
    /// Whether to retry after `error`.
    fn holds(&self, error: &E) -> bool;
}

#[diagnostic::do_not_recommend]
impl<E, F: Fn(&E) -> bool> RetryPredicate<E> for F {
    #[inline]
    fn holds(&self, error: &E) -> bool {
        self(error)
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
