//! The permits a call holds of its held guards (concurrency limit, bulkhead): one of each slot of its
//! site's [`Held`] list, taken together and given back together.
//!
//! An admitted call holds a permit of every slot in the list, so its permits are the list itself, or its
//! one slot when it has one: most sites have one held guard, and take and give back its permit without a
//! loop (measured: the loop cost seven instructions a call).

use crate::guards::site::{HELD, Held};
use crate::rejected::Rejected;
use crate::slots::{Permit, Slots};

/// One permit of each slot of a [`Held`] list, given back when dropped: on completion, error,
/// cancellation or panic alike.
#[derive(Debug)]
#[must_use = "the permits are given back as soon as they are dropped"]
pub(crate) enum HeldPermits {
    /// No permits.
    None,
    /// A permit of the list's one slot, which is all most sites have: no loop to take or give it back.
    One(&'static Slots),
    /// A permit of each slot of the list.
    Many(&'static Held),
}

impl HeldPermits {
    /// No permits.
    pub(crate) fn none() -> HeldPermits {
        HeldPermits::None
    }

    /// A permit of each slot of `held`, when all are free at once; otherwise the first that is full, the
    /// permits taken before it given back.
    #[inline(always)]
    #[allow(clippy::inline_always, reason = "on the fast path of every admission, kept in registers")]
    pub(crate) fn take(held: &'static Held) -> Result<HeldPermits, &'static Slots> {
        match held {
            [None, ..] => Ok(HeldPermits::None),
            [Some(only), rest @ ..] if rest.first().is_none_or(Option::is_none) => {
                let Some(permit) = only.take() else { return Err(only) };
                // Given back by this value's drop.
                std::mem::forget(permit);
                Ok(HeldPermits::One(only))
            }
            _ => HeldPermits::take_each(held),
        }
    }

    /// [`HeldPermits::take`] for a list of more than one slot.
    #[cold]
    fn take_each(held: &'static Held) -> Result<HeldPermits, &'static Slots> {
        for (index, slots) in held.iter().enumerate() {
            let Some(slots) = *slots else { break };
            let Some(permit) = slots.take() else {
                give_back(&held[..index]);
                return Err(slots);
            };
            std::mem::forget(permit);
        }
        Ok(HeldPermits::Many(held))
    }

    /// A permit of each slot of `held`, in order, each waited for up to its guard's own wait (or refused
    /// at once by a guard that does not wait); the permits taken before a refusal, or before the wait is
    /// cancelled, go back.
    pub(crate) async fn acquire(held: &'static Held) -> Result<HeldPermits, Rejected> {
        let mut permits: [Option<Permit<'static>>; HELD] = [const { None }; HELD];
        for (slots, permit) in held.iter().zip(&mut permits) {
            let Some(slots) = *slots else { break };
            *permit = Some(slots.acquire().await?);
        }
        // Given back by the returned value's drop.
        permits.into_iter().flatten().for_each(std::mem::forget);
        Ok(HeldPermits::Many(held))
    }

    /// Tells adaptive limits among the slots of these permits that the call holding them waited
    /// `queued_nanos` for them: the part of the round trip it reports at its end that was not the
    /// dependency's.
    #[cold]
    pub(crate) fn waited(&self, queued_nanos: u64) {
        if let HeldPermits::Many(held) = *self {
            for slots in held.iter().map_while(|slots| *slots) {
                slots.queued(queued_nanos);
            }
        }
    }

    /// Gives the permits back after a call that held them `elapsed` nanoseconds, telling adaptive limits
    /// of its round trip. A call that waited for its permits counts from its start, and told them of its
    /// wait when it ended ([`HeldPermits::waited`]).
    #[inline(always)]
    #[allow(clippy::inline_always, reason = "on the fast path of every call, kept in registers")]
    pub(crate) fn give_back_after(self, elapsed: u64) {
        let permits = std::mem::ManuallyDrop::new(self);
        match *permits {
            HeldPermits::None => {}
            HeldPermits::One(only) => only.give_back_after(elapsed),
            HeldPermits::Many(held) => give_back_each_after(held, elapsed),
        }
    }
}

/// Gives back a permit of each slot of `held`, held `elapsed` nanoseconds.
#[cold]
fn give_back_each_after(held: &[Option<&'static Slots>], elapsed: u64) {
    for slots in held {
        let Some(slots) = slots else { break };
        slots.give_back_after(elapsed);
    }
}

impl Drop for HeldPermits {
    #[inline]
    fn drop(&mut self) {
        match *self {
            HeldPermits::None => {}
            HeldPermits::One(only) => drop(only.reclaim()),
            HeldPermits::Many(held) => give_back(held),
        }
    }
}

/// Gives back a permit of each slot of `held`, which ends at its first `None`.
#[inline]
fn give_back(held: &[Option<&'static Slots>]) {
    for slots in held {
        let Some(slots) = slots else { break };
        drop(slots.reclaim());
    }
}
