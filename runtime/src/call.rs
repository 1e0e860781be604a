//! One call in progress: counted when it starts, classified and timed when it ends, and recorded as
//! cancelled or panicked if it never gets there.

use std::mem;

use crate::clock;
use crate::metrics::shards;
use crate::outcome::Outcome;
use crate::site::{DETACHED, Site};

/// A call of a `#[hardened]` function, from start to outcome.
///
/// Dropping it without [`Call::finish`] records [`Outcome::Panic`] while the thread unwinds, and
/// [`Outcome::Cancelled`] otherwise.
#[derive(Debug)]
#[must_use = "a call that is dropped is recorded as cancelled"]
pub struct Call {
    site: &'static Site,
    slot: u32,
    started_at: u64,
}

impl Call {
    /// Counts a call of `site` as started.
    #[inline]
    pub fn start(site: &'static Site) -> Call {
        let slot = shards::slot_of(site);
        if slot == DETACHED {
            return Call { site, slot, started_at: 0 };
        }
        shards::record_start(slot);
        Call { site, slot, started_at: clock::ticks() }
    }

    /// Records the call's outcome and duration.
    #[inline(always)]
    #[allow(
        clippy::inline_always,
        reason = "measured: out of line, moving the call and saving registers cost more than the work"
    )]
    pub fn finish(self, outcome: Outcome) {
        self.record(outcome);
        mem::forget(self);
    }

    #[inline]
    fn record(&self, outcome: Outcome) {
        if self.slot != DETACHED {
            shards::record_finish(self.site, self.slot, outcome, clock::nanos_since(self.started_at));
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        let outcome = if std::thread::panicking() { Outcome::Panic } else { Outcome::Cancelled };
        self.record(outcome);
    }
}
