//! Keyed bulkheads around a call: a call takes a permit of its key (at most the bulkhead's `max` in
//! flight for each key), once per call, before its attempts, and holds it until the call ends.
//!
//! A site whose `bulkhead(..)` has a `key` takes its permit here, and its chain runs without the bulkhead.
//! The key is an expression over the arguments, read before the body may move them.

use crate::guards::guarded::{Guarded, GuardedReturn, imposed};
use crate::guards::site::SiteGuards;
use crate::guards::tokens::refused_before;
use crate::outcome::Outcome;
use crate::rate_limit::LimitKey;
use crate::slots::{KeyedPermit, Slots};
use crate::support::key_hash::key_hash;

/// A call's key, hashed: what a keyed bulkhead counts calls in flight by.
#[derive(Debug, Clone, Copy)]
pub struct HashedKey(u64);

/// The hash of a call's key, checked to be one (`Hash + Eq + Debug + Sync`) where it is written.
#[inline]
pub fn hashed_key<K: LimitKey>(key: &K) -> HashedKey {
    HashedKey(key_hash(key))
}

impl SiteGuards {
    /// The slots whose permits the site's calls take by key.
    fn keyed_slots(&'static self) -> &'static Slots {
        self.resolved().keyed.expect("a site that takes permits by key has a bulkhead")
    }
}

/// Takes a permit of `key` from the keyed bulkhead of `guards`' site, waiting up to its `wait`, or says
/// why not, as the value the call returns, told to the guard events.
///
/// # Errors
///
/// The refused call's value, with [`Outcome::Rejected`].
pub async fn enter_keyed<R: GuardedReturn>(
    guards: &'static SiteGuards,
    key: HashedKey,
) -> Result<KeyedPermit<'static>, Guarded<R>> {
    guards
        .keyed_slots()
        .acquire_keyed(key.0)
        .await
        .map_err(|rejected| imposed(Some(guards.site()), rejected, Outcome::Rejected))
}

/// Takes a permit of `key` at once, for a synchronous call: a refused call is recorded as such and its
/// value returned, with its outcome.
///
/// # Errors
///
/// The refused call's value and outcome, [`Outcome::Rejected`].
pub fn try_enter_keyed<R: GuardedReturn>(
    guards: &'static SiteGuards,
    key: HashedKey,
) -> Result<KeyedPermit<'static>, (R, Outcome)> {
    guards.keyed_slots().try_acquire_keyed(key.0).map_err(|rejected| refused_before(guards, rejected))
}
