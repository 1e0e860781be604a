//! Slots per key: at most the limit of calls in flight for each key (a tenant, a user, an API key), so
//! that one key's calls cannot take every place (`bulkhead(max = 4, key = tenant)`).
//!
//! A key's count exists only while it has calls in flight: memory is bounded by the calls in flight,
//! whatever the number of keys. Counts are kept in a few shards, each behind its own lock; callers that
//! may wait queue on their shard's `Notify`, woken when a call of that shard ends.

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

use super::Slots;
use crate::rejected::Rejected;
use crate::support::key_hash::{ByKeyHash, KeyShards};

/// Shards of the counts: enough that calls for different keys rarely share a lock.
const SHARDS: usize = 16;

/// The calls in flight of each key of one limit.
pub(super) struct KeyedSlots {
    shards: KeyShards<Shard>,
}

impl Default for KeyedSlots {
    fn default() -> Self {
        KeyedSlots { shards: KeyShards::new(SHARDS) }
    }
}

#[derive(Default)]
struct Shard {
    in_flight: Mutex<ByKeyHash<u32>>,
    freed: Notify,
}

impl KeyedSlots {
    /// Counts a call of the key of `hash` in, if it has fewer than `max` in flight.
    fn try_take(&self, hash: u64, max: u32) -> bool {
        let mut in_flight = self.shard(hash).in_flight.lock().unwrap_or_else(PoisonError::into_inner);
        let count = in_flight.entry(hash).or_insert(0);
        if *count >= max {
            return false;
        }
        *count += 1;
        true
    }

    /// Counts a call of the key of `hash` out, dropping the key's count when it was its last.
    fn release(&self, hash: u64) {
        let shard = self.shard(hash);
        {
            let mut in_flight = shard.in_flight.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(count) = in_flight.get_mut(&hash) {
                *count -= 1;
                if *count == 0 {
                    in_flight.remove(&hash);
                }
            }
        }
        shard.freed.notify_waiters();
    }

    /// Keys with calls in flight.
    pub(super) fn keys(&self) -> usize {
        self.shards.iter().map(|shard| shard.in_flight.lock().unwrap_or_else(PoisonError::into_inner).len()).sum()
    }

    fn shard(&self, hash: u64) -> &Shard {
        self.shards.of(hash)
    }
}

/// A permit of one key's slots, given back when dropped: on completion, error, cancellation or panic
/// alike.
#[must_use = "the permit is released as soon as it is dropped"]
pub struct KeyedPermit<'a> {
    slots: &'a Slots,
    hash: u64,
}

impl fmt::Debug for KeyedPermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedPermit").field("slots", &self.slots.name()).finish_non_exhaustive()
    }
}

impl Drop for KeyedPermit<'_> {
    fn drop(&mut self) {
        self.slots.keyed().release(self.hash);
    }
}

impl Slots {
    /// The counts per key, made by the first keyed call.
    fn keyed(&self) -> &KeyedSlots {
        self.keyed.get_or_init(KeyedSlots::default)
    }

    /// Takes a permit of the key of `hash` if it has fewer than the limit in flight, counting a refusal
    /// otherwise. The limit applies to each key; the slots' own permits are not taken.
    pub(crate) fn try_acquire_keyed(&self, hash: u64) -> Result<KeyedPermit<'_>, Rejected> {
        if self.keyed().try_take(hash, self.max()) {
            Ok(KeyedPermit { slots: self, hash })
        } else {
            Err(self.refusal())
        }
    }

    /// Takes a permit of the key of `hash`, waiting up to the configured `wait` for one.
    pub(crate) async fn acquire_keyed(&self, hash: u64) -> Result<KeyedPermit<'_>, Rejected> {
        let wait = self.wait().unwrap_or(Duration::ZERO);
        let shard = self.keyed().shard(hash);
        let waited = tokio::time::timeout(wait, async {
            loop {
                let freed = shard.freed.notified();
                tokio::pin!(freed);
                // Registered before the try, so a release between the two still wakes this caller.
                freed.as_mut().enable();
                if self.keyed().try_take(hash, self.max()) {
                    return KeyedPermit { slots: self, hash };
                }
                freed.await;
            }
        })
        .await;
        waited.map_err(|_| self.refusal())
    }

    /// Whether a keyed call has used these slots.
    #[must_use]
    pub fn is_keyed(&self) -> bool {
        self.keyed.get().is_some()
    }

    /// Keys with calls in flight, for a keyed limit.
    #[must_use]
    pub fn keys_in_flight(&self) -> usize {
        self.keyed.get().map_or(0, KeyedSlots::keys)
    }
}
