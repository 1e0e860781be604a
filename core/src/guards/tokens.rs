//! Keyed and weighted rate limits around a call: what the call takes from its limiter ([`Demand`]: the
//! bucket of its key, and its cost in tokens) is taken once per call, before its attempts, and settled
//! after it with what it used.
//!
//! A site whose `rate(..)` has a `key`, a `cost` or a `settle` takes its tokens here, and its chain runs
//! without the rate limiter. The key and the cost are expressions over the arguments, read before the body
//! may move them. A call that a guard inside refuses (an open breaker, a full bulkhead) gets its tokens
//! back; a call that times out or fails keeps them; a call that succeeds is charged what `settle` says.

use crate::clock;
use crate::guards::call::Call;
use crate::guards::guarded::{Guarded, GuardedReturn, imposed};
use crate::guards::site::SiteGuards;
use crate::outcome::Outcome;
use crate::rate_limit::{Demand, RateLimiter, Ticket};
use crate::rejected::Rejected;

impl SiteGuards {
    /// The rate limiter the site takes its tokens from.
    fn token_limiter(&'static self) -> &'static RateLimiter {
        self.resolved().tokens.expect("a site that takes tokens has a rate limiter")
    }
}

/// Takes `demand`'s tokens from the rate limiter of `guards`' site, waiting up to its `wait`, or says why
/// not, as the value the call returns, told to the guard events.
///
/// # Errors
///
/// The refused call's value, with [`Outcome::Rejected`].
pub async fn take_tokens<R: GuardedReturn>(
    guards: &'static SiteGuards,
    demand: Demand<'_>,
) -> Result<Ticket, Guarded<R>> {
    guards
        .token_limiter()
        .take(demand)
        .await
        .map_err(|rejected| imposed(Some(guards.site()), rejected, Outcome::Rejected))
}

/// Takes `demand`'s tokens at once, for a synchronous call: a refused call is recorded as such and its
/// value returned, with its outcome.
///
/// # Errors
///
/// The refused call's value and outcome, [`Outcome::Rejected`].
pub fn try_take_tokens<R: GuardedReturn>(
    guards: &'static SiteGuards,
    demand: Demand<'_>,
) -> Result<Ticket, (R, Outcome)> {
    guards.token_limiter().try_take(demand).map_err(|rejected| refused_before(guards, rejected))
}

/// A synchronous call refused before its chain started (by its tokens or its keyed permit), recorded with
/// its outcome.
#[cold]
pub(crate) fn refused_before<R: GuardedReturn>(guards: &'static SiteGuards, rejected: Rejected) -> (R, Outcome) {
    crate::guards::guarded::refused(Call::start_timed(guards.site(), clock::system()), rejected)
}

/// Settles the ticket of an asynchronous call that ended as `done`, by the rule of the module docs.
pub async fn settle_tokens<R, S: Settle<R>>(
    guards: &'static SiteGuards,
    ticket: Ticket,
    done: &Guarded<R>,
    settle: &S,
) {
    let used = used(&ticket, &done.0, done.1, settle);
    guards.token_limiter().settle(ticket, used).await;
}

/// Settles the ticket of a synchronous call that ended as `done` (its value and outcome), by the rule of
/// the module docs.
pub fn settle_tokens_now<R, S: Settle<R>>(
    guards: &'static SiteGuards,
    ticket: Ticket,
    done: &(R, Outcome),
    settle: &S,
) {
    let imposed = (done.1 == Outcome::Rejected).then_some(done.1);
    let used = used(&ticket, &done.0, imposed, settle);
    guards.token_limiter().settle_now(ticket, used);
}

/// The tokens a call used: none when a guard refused it, what `settle` says of a success, and what it
/// took otherwise.
pub(crate) fn used<R, S: Settle<R>>(ticket: &Ticket, value: &R, imposed: Option<Outcome>, settle: &S) -> u64 {
    match imposed {
        Some(Outcome::Rejected) => 0,
        Some(_) => ticket.cost(),
        None => settle.used(value).unwrap_or(ticket.cost()),
    }
}

/// What a call used of its limiter's tokens, from its value: `settle = path`, a `fn(&T) -> u64` over the
/// `Ok` value of a `Result<T, E>`; [`KeepCost`] without one.
#[diagnostic::on_unimplemented(
    message = "`settle` needs a function `fn(&T) -> u64` over the `Ok` value of the function's `{R}`",
    label = "this is not a `fn(&T) -> u64` for this function's `Ok` type",
    note = "the function receives the call's successful value and returns the tokens it really used; the difference from `cost` is refunded or charged"
)]
pub trait Settle<R> {
    /// The tokens used, when the value says.
    fn used(&self, value: &R) -> Option<u64>;
}

#[diagnostic::do_not_recommend]
impl<T, E, F: Fn(&T) -> u64> Settle<Result<T, E>> for F {
    #[inline]
    fn used(&self, value: &Result<T, E>) -> Option<u64> {
        value.as_ref().ok().map(self)
    }
}

/// No `settle`: a call keeps the tokens it took.
#[derive(Debug, Clone, Copy)]
pub struct KeepCost;

impl<R> Settle<R> for KeepCost {
    #[inline]
    fn used(&self, _: &R) -> Option<u64> {
        None
    }
}
