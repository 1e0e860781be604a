//! The guards a call holds a permit of for its whole length (concurrency limit, bulkhead), and the
//! permits it holds.
//!
//! On the paths that admit a call at once (a synchronous call, an asynchronous one without a timeout or
//! retries) a site has one held guard at most, and its call holds one [`HeldPermit`], as a call held its
//! bulkhead's permit before there were several held kinds: the attribute sends a function that declares
//! two (a concurrency limit and a bulkhead) through attempts, which take [`HeldPermits`] of each. Measured:
//! a list walked by every call cost about ten instructions a call.

use crate::guards::kinds::guard_kinds;
use crate::rejected::Rejected;
use crate::slots::{Permit, Slots};

macro_rules! held_kinds {
    ($($field:ident: $guard:ty, $settings:ty, $on_site:ident, $one:ident, $all:ident;)*) => {
        /// How many kinds of guard hold a permit for the length of a call: the most a site can have.
        pub(crate) const HELD: usize = 0 $( + <$guard as crate::kind::GuardKind>::HOLDS as usize )*;
    };
}

guard_kinds!(held_kinds);

/// The slots a call takes a permit of, in the order of the list of kinds; the first `None` ends it.
pub(crate) type Held = [Option<&'static Slots>; HELD];

/// `held` without `slots` (a guard whose permits the call takes by key instead), the others in order.
pub(crate) fn without(held: Held, slots: &Slots) -> Held {
    let mut kept = [None; HELD];
    for (at, other) in held.into_iter().flatten().filter(|other| !std::ptr::eq(*other, slots)).enumerate() {
        kept[at] = Some(other);
    }
    kept
}

/// The permit of the one held guard of a call admitted at once, if its site has one.
pub(crate) type HeldPermit = Option<Permit<'static>>;

/// The permit of the one held guard of `held` (a site that admits its calls at once has no second one),
/// when it is free at once; otherwise that guard's slots.
#[inline(always)]
#[allow(clippy::inline_always, reason = "on the fast path of every admission, kept in registers")]
pub(crate) fn take_one(held: &Held) -> Result<HeldPermit, &'static Slots> {
    debug_assert!(held.iter().skip(1).all(Option::is_none), "a site admitted at once has one held guard at most");
    match held[0] {
        None => Ok(None),
        Some(slots) => slots.take().map(Some).ok_or(slots),
    }
}

/// The permit of the one held guard of `held`, waited for up to its wait.
pub(crate) async fn acquire_one(held: &Held) -> Result<HeldPermit, Rejected> {
    match held[0] {
        None => Ok(None),
        Some(slots) => slots.acquire().await.map(Some),
    }
}

/// One permit of each held guard of a [`Held`] list, given back when dropped: on completion, error,
/// cancellation or panic alike. What an attempt holds.
#[derive(Debug)]
#[must_use = "the permits are given back as soon as they are dropped"]
pub(crate) struct HeldPermits(&'static Held);

impl HeldPermits {
    /// A permit of each held guard of `held`, in order, each waited for up to its guard's own wait (or
    /// refused at once by a guard that does not wait); the permits taken before a refusal, or before the
    /// wait is cancelled, go back.
    pub(crate) async fn acquire(held: &'static Held) -> Result<HeldPermits, Rejected> {
        let mut permits: [HeldPermit; HELD] = [const { None }; HELD];
        for (slots, permit) in held.iter().zip(&mut permits) {
            let Some(slots) = *slots else { break };
            *permit = Some(slots.acquire().await?);
        }
        // Given back by the returned value's drop.
        permits.into_iter().flatten().for_each(std::mem::forget);
        Ok(HeldPermits(held))
    }

    /// Gives the permits back after an attempt that held them `elapsed` nanoseconds, telling adaptive
    /// limits of its round trip.
    pub(crate) fn give_back_after(self, elapsed: u64) {
        let held = std::mem::ManuallyDrop::new(self).0;
        for slots in held.iter().map_while(|slots| *slots) {
            slots.give_back_after(elapsed);
        }
    }
}

/// Tells the adaptive limit among `held`, if its permit is one, that the call holding it waited
/// `queued_nanos` for it: the part of the round trip it reports at its end that was not the dependency's.
#[cold]
pub(crate) fn waited(held: &HeldPermit, queued_nanos: u64) {
    if let Some(permit) = held {
        permit.slots().queued(queued_nanos);
    }
}

/// Gives back the permit of a call admitted at once after it held it `elapsed` nanoseconds, telling an
/// adaptive limit of its round trip.
#[inline(always)]
#[allow(clippy::inline_always, reason = "on the fast path of every call, kept in registers")]
pub(crate) fn give_back_after(held: HeldPermit, elapsed: u64) {
    if let Some(permit) = held {
        permit.give_back_after(elapsed);
    }
}

impl Drop for HeldPermits {
    fn drop(&mut self) {
        for slots in self.0 {
            let Some(slots) = slots else { break };
            drop(slots.reclaim());
        }
    }
}
