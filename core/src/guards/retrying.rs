//! The outermost guard of an asynchronous call: its attempts, each through the rest of the chain
//! ([`attempt`]), repeated as the retry policy, its budget and its backoff allow.
//!
//! The generated code only loops: an attempt borrows the function's arguments again, which a future the
//! runtime made could not do (a closure returning a future that borrows from it is an `async` closure, and
//! the future of an `async` closure over a borrowed argument cannot be proven `Send`). Each turn of the
//! loop hands [`next_attempt`] a new closure, called once, that makes the attempt's future where the
//! guards await it.

use std::future::Future;
use std::marker::PhantomData;
use std::time::Duration;

use crate::guards::SiteGuards;
use crate::guards::guarded::{Guarded, GuardedReturn, attempt};
use crate::guards::shards;
use crate::outcome::Outcome;
use crate::retry::RetryPolicy;

/// An asynchronous call with a timeout or retries, between its attempts.
///
/// ```ignore
/// let mut retrying = retrying::<R, _, _>(&GUARDS, is_failure, retry_when);
/// loop {
///     if let Some(done) = next_attempt::<R, _, _, _, _>(&mut retrying, || async { body }).await {
///         break done;
///     }
/// }
/// ```
#[must_use = "a call is made by its attempts"]
pub struct Retrying<R, P, W> {
    guards: &'static SiteGuards,
    is_failure: P,
    retry_when: W,
    retries: u32,
    value: PhantomData<fn(&R)>,
}

/// Opens a call of the site of `guards`, adding its share to the retry budget. `is_failure` is the outcome
/// rule as the breaker's verdict, `retry_when` whether a failure is worth another attempt
/// (`retry(when = ..)`). A function rather than a constructor, so that the generated call names the
/// return type as `retrying::<R, _, _>` and a type that cannot carry a refusal is reported there.
#[inline]
pub fn retrying<R, P, W>(guards: &'static SiteGuards, is_failure: P, retry_when: W) -> Retrying<R, P, W>
where
    R: GuardedReturn,
    P: Fn(&R) -> bool,
    W: Fn(&R) -> bool,
{
    if let Some(policy) = guards.retry() {
        policy.deposit();
    }
    Retrying { guards, is_failure, retry_when, retries: 0, value: PhantomData }
}

/// Runs one attempt of `retrying`'s call, the future `body` makes, through the chain: the call's result
/// when it is the last one, or `None` after waiting out the backoff when another attempt follows. A
/// function for the same reason as [`retrying`]: an unmet bound on the return type is then one error at
/// one token. The body is made where it is awaited, as [`attempt`] says why.
pub async fn next_attempt<R, P, W, F, Fut>(retrying: &mut Retrying<R, P, W>, body: F) -> Option<Guarded<R>>
where
    R: GuardedReturn,
    P: Fn(&R) -> bool,
    W: Fn(&R) -> bool,
    F: FnOnce() -> Fut,
    Fut: Future<Output = R>,
{
    let (value, imposed) = attempt(retrying.guards, body, &retrying.is_failure).await;
    let Some(delay) = retrying.delay(&value, imposed) else { return Some((value, imposed)) };
    tokio::time::sleep(delay).await;
    retrying.retries += 1;
    None
}

impl<R, P, W> Retrying<R, P, W> {
    /// Counts a retry made after [`Retrying::delay`] granted it (a hedged call's, which waits itself).
    pub(crate) fn retried(&mut self) {
        self.retries += 1;
    }

    /// The outcome rule as the breaker's verdict.
    pub(crate) fn is_failure(&self) -> &P {
        &self.is_failure
    }
}

impl<R, P, W> Retrying<R, P, W>
where
    R: GuardedReturn,
    P: Fn(&R) -> bool,
    W: Fn(&R) -> bool,
{
    /// Whether another attempt should follow this one, and after how long.
    ///
    /// Refusals by the breaker, the rate limiter, the concurrency limit and the bulkhead are never retried;
    /// timeouts are; other failures are when `retry_when` agrees and the budget allows.
    pub(crate) fn delay(&self, value: &R, imposed: Option<Outcome>) -> Option<Duration> {
        let policy = self.guards.retry()?;
        let delay = retry_delay(policy, self.retries, imposed, || {
            value.error().is_some() && (self.is_failure)(value) && (self.retry_when)(value)
        })?;
        shards::record_retry(self.guards.site());
        crate::events::retry(self.guards.site().name(), policy.name(), self.retries + 1, delay);
        Some(delay)
    }
}

/// Whether an attempt that `imposed` ended (or that ran to its end, when `None`) is followed by retry
/// number `retries` (0 for the first) under `policy`, and after how long: refusals never, timeouts
/// always, other results when `retryable` says so; each within the attempts and the budget.
pub(crate) fn retry_delay(
    policy: &RetryPolicy,
    retries: u32,
    imposed: Option<Outcome>,
    retryable: impl FnOnce() -> bool,
) -> Option<Duration> {
    let retry = match imposed {
        Some(Outcome::Timeout) => true,
        Some(_) => false,
        None => retryable(),
    };
    if retry { policy.next_delay(retries, None) } else { None }
}

impl<R, P, W> std::fmt::Debug for Retrying<R, P, W> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Retrying")
            .field("site", &self.guards.site().name())
            .field("retries", &self.retries)
            .finish_non_exhaustive()
    }
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
