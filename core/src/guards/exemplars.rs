//! Exemplars: for each bucket of a site's duration histogram, a recent call that fell in it inside a
//! sampled trace (the latest, but that a bucket keeps an exemplar at least [`MIN_EXEMPLAR_AGE`]), with
//! that trace's id, so that a latency spike on a dashboard leads to a trace.
//!
//! Core has no OpenTelemetry dependency: the runtime registers a [`set_source`] that reads a span's
//! trace and span ids when its trace is sampled, turns exemplars on with [`set_enabled`] when its
//! sampler can sample, and, as each span's trace is found sampled, notes the span with
//! [`note_sampled`]. A call tests its span against those notes with one load; only a noted span takes
//! the cold [`offer`], which asks the source and writes the bucket's one slot. So a call whose trace is
//! not sampled pays the same with exemplars on as off. The slots of a site are allocated at its first
//! exemplar; a slot that another thread is writing is skipped, never waited for.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError, TryLockError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::Span;
use tracing::span::Id;

use crate::guards::site::{Site, sites};

/// The ids of a span in a sampled trace, as the [`set_source`] reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SampledSpan {
    /// The W3C trace id.
    pub trace_id: [u8; 16],
    /// The W3C span id.
    pub span_id: [u8; 8],
}

/// One call kept as an exemplar of a histogram bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Exemplar {
    /// The trace the call was part of.
    pub trace_id: [u8; 16],
    /// The call's span.
    pub span_id: [u8; 8],
    /// The call's duration, in nanoseconds.
    pub value_nanos: u64,
    /// When the call ended, in nanoseconds since the Unix epoch.
    pub unix_nanos: u64,
}

impl Exemplar {
    /// The trace id in lowercase hex, as W3C Trace Context, Prometheus and Tempo write it.
    #[must_use]
    pub fn trace_id_hex(&self) -> String {
        crate::support::hex(&self.trace_id)
    }

    /// The span id in lowercase hex.
    #[must_use]
    pub fn span_id_hex(&self) -> String {
        crate::support::hex(&self.span_id)
    }
}

/// Reads the ids of a span whose trace is sampled; `None` for any other span. A call asks it while the
/// span is entered, right after the call's outcome was recorded on it.
pub type Source = fn(&Span) -> Option<SampledSpan>;

static ENABLED: AtomicBool = AtomicBool::new(false);
static SOURCE: OnceLock<Source> = OnceLock::new();

/// Registers the function that reads a span's ids; the first registration wins (`false` after it).
///
/// Nothing is kept until [`set_enabled`] turns exemplars on as well.
pub fn set_source(source: Source) -> bool {
    SOURCE.set(source).is_ok()
}

/// Turns keeping exemplars on or off. Off, a call pays one relaxed load for them.
pub fn set_enabled(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// Whether exemplars are kept: turned on and with a source registered.
#[must_use]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed) && SOURCE.get().is_some()
}

/// The spans noted by [`note_sampled`], one per entry, by a multiplicative hash of their id: a later
/// note for another span of the same entry replaces it, which costs that span its exemplar, never a wrong
/// one (the source is asked before anything is kept).
static SAMPLED_SPANS: [AtomicU64; SAMPLED_ENTRIES] = [const { AtomicU64::new(0) }; SAMPLED_ENTRIES];

/// Entries of [`SAMPLED_SPANS`]: room for the sampled spans of many concurrent calls.
const SAMPLED_ENTRIES: usize = 256;

/// The entry of the span with id `id` (the top bits of a Fibonacci hash, so that the ids of different
/// threads, which differ in their middle bits, spread).
#[inline(always)]
#[allow(clippy::inline_always, reason = "two instructions, on every call's path")]
fn sampled_entry(id: u64) -> &'static AtomicU64 {
    #[allow(clippy::cast_possible_truncation, reason = "the top 8 bits, an index below 256")]
    let index = (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as usize;
    &SAMPLED_SPANS[index]
}

/// Notes that the span with tracing id `span` is part of a sampled trace: the runtime calls it when the
/// span's OpenTelemetry context starts (the span is entered) with a sampled flag, so that the span's call
/// offers its exemplar. Nothing else makes a call offer one.
pub fn note_sampled(span: &Id) {
    let id = span.into_u64();
    sampled_entry(id).store(id, Ordering::Relaxed);
}

/// Offers a finished call of `site` that took `nanos` as an exemplar, if its `span` is enabled. Called
/// right after the call's outcome is recorded on its span, which has read the same `span` already: the
/// test below reuses that reading, and nothing else is on the path of a call whose span is disabled.
#[inline(always)]
#[allow(clippy::inline_always, reason = "on every call's path: one test, then a call kept out of line")]
pub(crate) fn offer_if_on(site: &'static Site, nanos: u64, span: &Span) {
    if !span.is_disabled() {
        offer(site, nanos, span);
    }
}

/// Keeps the call as its bucket's exemplar when its span was noted as sampled ([`note_sampled`]) and its
/// trace is. For a span not noted, a load and a comparison, exemplars on or off.
#[cold]
#[inline(never)]
fn offer(site: &'static Site, nanos: u64, span: &Span) {
    let Some(id) = span.id().map(|id| id.into_u64()) else { return };
    let noted = sampled_entry(id);
    if noted.load(Ordering::Relaxed) != id {
        return;
    }
    // The note is used up: a span's call offers once, and a later span given the same id is noted anew.
    let _ = noted.compare_exchange(id, 0, Ordering::Relaxed, Ordering::Relaxed);
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let Some(slots) = slots_of(site) else { return };
    let bounds = site.bucket_nanos();
    let bucket = bounds.iter().position(|bound| nanos <= *bound).unwrap_or(bounds.len());
    let Some(slot) = slots.get(bucket) else { return };
    let now = unix_nanos();
    // Checked before the source is asked, which is most of an offer's cost: a bucket that has just kept an
    // exemplar keeps it.
    if let Ok(kept) = slot.try_lock()
        && !replaces(kept.as_ref(), now)
    {
        return;
    }
    let Some(sampled) = SOURCE.get().and_then(|source| source(span)) else { return };
    let exemplar =
        Exemplar { trace_id: sampled.trace_id, span_id: sampled.span_id, value_nanos: nanos, unix_nanos: now };
    match slot.try_lock() {
        Ok(mut kept) => *kept = Some(exemplar),
        Err(TryLockError::Poisoned(poisoned)) => *poisoned.into_inner() = Some(exemplar),
        // Another call of the same bucket is writing its own: one of the two is enough.
        Err(TryLockError::WouldBlock) => {}
    }
}

/// The shortest time a bucket keeps an exemplar before a later call of the bucket replaces it (as
/// Prometheus' Java client samples them): a scrape every few seconds sees a recent exemplar either way, and
/// a busy bucket asks the source for a span's ids about ten times a second instead of at every call.
pub const MIN_EXEMPLAR_AGE: Duration = Duration::from_millis(90);

/// Whether a call ending at `now` (nanoseconds since the Unix epoch) replaces a bucket's `kept` exemplar:
/// when the bucket has none, or one at least [`MIN_EXEMPLAR_AGE`] old (or from a later time, the clock
/// having been set back).
fn replaces(kept: Option<&Exemplar>, now: u64) -> bool {
    kept.is_none_or(|kept| {
        now.checked_sub(kept.unix_nanos).is_none_or(|age| u128::from(age) >= MIN_EXEMPLAR_AGE.as_nanos())
    })
}

fn unix_nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
}

/// One slot per bucket, the last for `+Inf`.
type Slots = Box<[Mutex<Option<Exemplar>>]>;

/// The slots of every site, by the site's index in [`sites()`], each allocated at its first exemplar.
fn store() -> &'static [OnceLock<Slots>] {
    static STORE: OnceLock<Box<[OnceLock<Slots>]>> = OnceLock::new();
    STORE.get_or_init(|| sites().iter().map(|_| OnceLock::new()).collect())
}

/// The index of `site` in [`sites()`]; `None` for a site outside it (a platform without linker sections).
fn index_of(site: &Site) -> Option<usize> {
    let all = sites();
    let stride = std::mem::size_of::<Site>();
    let offset = (std::ptr::from_ref(site) as usize).checked_sub(all.as_ptr() as usize)?;
    (offset % stride == 0).then_some(offset / stride).filter(|index| *index < all.len())
}

fn slots_of(site: &Site) -> Option<&'static Slots> {
    let index = index_of(site)?;
    let slots = store().get(index)?;
    Some(slots.get_or_init(|| (0..=site.bucket_nanos().len()).map(|_| Mutex::new(None)).collect()))
}

/// The exemplar of each bucket of `site`'s duration histogram, in the order of its bounds, the last for
/// `+Inf`: `None` for a bucket without one. Empty for a site that has kept none.
#[must_use]
pub fn exemplars(site: &Site) -> Vec<Option<Exemplar>> {
    let Some(slots) = index_of(site).and_then(|index| store().get(index)?.get()) else { return Vec::new() };
    slots.iter().map(|slot| *slot.lock().unwrap_or_else(PoisonError::into_inner)).collect()
}

/// Forgets every exemplar kept so far (the slots stay allocated).
pub fn clear() {
    for slots in store().iter().filter_map(OnceLock::get) {
        for slot in slots {
            *slot.lock().unwrap_or_else(PoisonError::into_inner) = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_written_in_lowercase_hex() {
        let exemplar = Exemplar {
            trace_id: [0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36],
            span_id: [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7],
            value_nanos: 1,
            unix_nanos: 2,
        };
        assert_eq!(exemplar.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(exemplar.span_id_hex(), "00f067aa0ba902b7");
    }

    #[test]
    fn a_bucket_keeps_its_exemplar_for_the_minimum_age_then_takes_the_next_call() {
        let kept_at = 1_000_000_000_000;
        let kept = Exemplar { trace_id: [1; 16], span_id: [2; 8], value_nanos: 3, unix_nanos: kept_at };
        let age = u64::try_from(MIN_EXEMPLAR_AGE.as_nanos()).expect("in range");
        assert!(replaces(None, kept_at), "an empty bucket takes the first call");
        assert!(!replaces(Some(&kept), kept_at), "a call at the same time");
        assert!(!replaces(Some(&kept), kept_at + age - 1), "a call just before the minimum age");
        assert!(replaces(Some(&kept), kept_at + age), "a call at the minimum age");
        assert!(replaces(Some(&kept), kept_at + 10 * age), "a later call");
        assert!(replaces(Some(&kept), kept_at - 1), "a clock set back");
    }
}
