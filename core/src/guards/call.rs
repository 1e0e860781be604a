//! One call in progress: counted when it starts, classified and timed when it ends, and recorded as
//! cancelled or panicked if it never gets there.

use std::mem;

use tracing::Span;

use crate::breaker::{CircuitBreaker, Verdict};
use crate::clock::{self, SystemClock};
use crate::guards::exemplars;
use crate::guards::shards;
use crate::guards::site::{DETACHED, Site};
use crate::outcome::Outcome;

/// A call of a `#[hardened]` function, from start to outcome.
///
/// Dropping it without [`Call::finish`] records [`Outcome::Panic`] while the thread unwinds, and
/// [`Outcome::Cancelled`] otherwise.
#[derive(Debug)]
#[must_use = "a call that is dropped is recorded as cancelled"]
pub struct Call {
    // Two words, so that the call stays in registers: the slot is read again from the site at the end.
    site: &'static Site,
    started_at: u64,
}

impl Call {
    /// Counts a call of `site` as started.
    #[inline]
    pub fn start(site: &'static Site) -> Call {
        let slot = shards::slot_of(site);
        if slot == DETACHED {
            return Call { site, started_at: 0 };
        }
        shards::record_start(slot);
        Call { site, started_at: clock::ticks() }
    }

    /// The call site.
    #[inline]
    pub(crate) fn site(&self) -> &'static Site {
        self.site
    }

    /// Counts a call of a site with guards as started. The clock is read even when the site's metrics
    /// are off: the guards time the call with the same readings.
    #[inline]
    pub(crate) fn start_timed(site: &'static Site, clock: &SystemClock) -> Call {
        let slot = shards::slot_of(site);
        if slot != DETACHED {
            shards::record_start(slot);
        }
        Call { site, started_at: clock.ticks() }
    }

    /// The start of the call as [`clock::system_nanos`] reads time (a [`Call::start_timed`] call).
    #[inline]
    #[must_use]
    pub(crate) fn started_nanos(&self, clock: &SystemClock) -> u64 {
        clock.nanos_at(self.started_at)
    }

    /// Nanoseconds since the call started (a [`Call::start_timed`] call).
    #[inline]
    #[must_use]
    pub(crate) fn elapsed_nanos(&self, clock: &SystemClock) -> u64 {
        clock.nanos_between(self.started_at, clock.ticks())
    }

    /// Records the call's outcome and duration; the call's `span`, when its trace is sampled, becomes the
    /// exemplar of the duration's bucket (see [`exemplars`]).
    #[inline(always)]
    #[allow(
        clippy::inline_always,
        reason = "measured: out of line, moving the call and saving registers cost more than the work"
    )]
    pub fn finish(self, outcome: Outcome, span: &Span) {
        let slot = self.site.slot();
        if slot != DETACHED {
            let nanos = clock::nanos_since(self.started_at);
            // Before the count, so that the span is not needed after it.
            exemplars::offer_if_on(self.site, nanos, span);
            shards::record_finish(self.site, slot, outcome, nanos, None);
        }
        mem::forget(self);
    }

    /// Records the call's outcome with a duration the caller measured from [`Call::elapsed_nanos`], and
    /// the result its breaker saw, if any (counted with the call's own metrics, in the same shard). The
    /// guarded paths that call it offer the exemplar themselves, where the span is at hand anyway.
    #[inline(always)]
    #[allow(clippy::inline_always, reason = "as `finish`, which this is with the duration already read")]
    pub(crate) fn finish_after(self, outcome: Outcome, nanos: u64, breaker: Option<(&CircuitBreaker, Verdict)>) {
        let slot = self.site.slot();
        if slot == DETACHED {
            if let Some((breaker, result)) = breaker {
                breaker.count_shared(result);
            }
        } else {
            shards::record_finish(self.site, slot, outcome, nanos, breaker.map(|(_, result)| result));
        }
        mem::forget(self);
    }

    /// Records a call that ended without a value to classify (refused, panicked): no exemplar.
    #[inline]
    pub(crate) fn finish_unobserved(self, outcome: Outcome) {
        self.record(outcome);
        mem::forget(self);
    }

    #[inline]
    fn record(&self, outcome: Outcome) {
        let slot = self.site.slot();
        if slot != DETACHED {
            shards::record_finish(self.site, slot, outcome, clock::nanos_since(self.started_at), None);
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        let outcome = if std::thread::panicking() { Outcome::Panic } else { Outcome::Cancelled };
        self.record(outcome);
    }
}
