//! The buckets of a keyed limiter: one GCRA bucket per key, at most `max_keys` of them.
//!
//! A bucket is its theoretical arrival time (TAT) and the time it was last used, found by the key's hash
//! in one of a few shards, each behind its own lock, so that calls for different keys rarely meet. Memory
//! is bounded by construction: a shard that is full, when a new key arrives, first drops every bucket that
//! is full again (its TAT has passed: such a bucket is indistinguishable from a new one, so dropping it
//! changes no decision), and if none is, the bucket used least recently.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::support::key_hash::{ByKeyHash, KeyShards};

/// Keys per shard below which a limiter keeps one shard: with one shard, eviction is exactly "least
/// recently used"; with more, it is per shard.
const KEYS_PER_SHARD: usize = 256;
/// The most shards a limiter splits its buckets over: enough that threads on different keys rarely share
/// a lock on a machine of a few dozen cores.
const MAX_SHARDS: usize = 64;

/// The buckets of one keyed limiter.
pub(super) struct KeyedBuckets {
    shards: KeyShards<Mutex<Shard>>,
    /// Buckets each shard may hold: `max_keys` over the shards, rounded down, so the total never exceeds it.
    per_shard: AtomicUsize,
}

/// One shard's buckets, by the hash of their key.
#[derive(Default)]
struct Shard {
    buckets: ByKeyHash<Bucket>,
}

/// One key's bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// The theoretical arrival time of the next token, in the clock's nanoseconds.
    arrival: u64,
    /// When a call last took from it.
    used: u64,
}

impl KeyedBuckets {
    /// Room for `max_keys` buckets.
    pub(super) fn new(max_keys: u32) -> KeyedBuckets {
        let max_keys = usize::try_from(max_keys.max(1)).unwrap_or(usize::MAX);
        let shards = (max_keys / KEYS_PER_SHARD).clamp(1, MAX_SHARDS).next_power_of_two().min(MAX_SHARDS);
        let buckets = KeyedBuckets { shards: KeyShards::new(shards), per_shard: AtomicUsize::new(1) };
        buckets.resize(u32::try_from(max_keys).unwrap_or(u32::MAX));
        buckets
    }

    /// Holds at most `max_keys` buckets from now on, dropping at once those over it (full ones first, then
    /// the least recently used) at `now`.
    pub(super) fn resize(&self, max_keys: u32) {
        let max_keys = usize::try_from(max_keys.max(1)).unwrap_or(usize::MAX);
        let per_shard = (max_keys / self.shards.len()).max(1);
        self.per_shard.store(per_shard, Ordering::Relaxed);
        for shard in self.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            while shard.buckets.len() > per_shard {
                shard.evict_one(u64::MAX);
            }
        }
    }

    /// Buckets held now, across the shards.
    pub(super) fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.lock().unwrap_or_else(PoisonError::into_inner).buckets.len()).sum()
    }

    /// The most buckets held at once.
    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.per_shard.load(Ordering::Relaxed) * self.shards.len()
    }

    /// Runs `decide` on the TAT of the bucket of `hash` at `now` (a new bucket's TAT is 0: full), and keeps
    /// what it returns as the bucket's new TAT, if anything.
    pub(super) fn update<T>(&self, hash: u64, now: u64, decide: impl FnOnce(u64) -> (T, Option<u64>)) -> T {
        let mut shard = self.shards.of(hash).lock().unwrap_or_else(PoisonError::into_inner);
        let arrival = shard.buckets.get(&hash).map_or(0, |bucket| bucket.arrival);
        let (result, kept) = decide(arrival);
        match kept {
            Some(arrival) => {
                if let Some(bucket) = shard.buckets.get_mut(&hash) {
                    *bucket = Bucket { arrival, used: now };
                } else if arrival > now {
                    // A bucket left full need not be kept: absent, it is read as full.
                    let per_shard = self.per_shard.load(Ordering::Relaxed);
                    if shard.buckets.len() >= per_shard {
                        shard.make_room(now);
                    }
                    shard.buckets.insert(hash, Bucket { arrival, used: now });
                }
            }
            None => {
                if let Some(bucket) = shard.buckets.get_mut(&hash) {
                    bucket.used = now;
                }
            }
        }
        result
    }
}

impl Shard {
    /// Frees one place or more at `now`: every bucket that is full again, or else the least recently used.
    fn make_room(&mut self, now: u64) {
        let before = self.buckets.len();
        self.buckets.retain(|_, bucket| bucket.arrival > now);
        if self.buckets.len() == before {
            self.evict_one(now);
        }
    }

    /// Drops the bucket full again at `now`, if one is, else the least recently used.
    fn evict_one(&mut self, now: u64) {
        let full = self.buckets.iter().find(|(_, bucket)| bucket.arrival <= now).map(|(hash, _)| *hash);
        let victim = full.or_else(|| self.buckets.iter().min_by_key(|(_, bucket)| bucket.used).map(|(hash, _)| *hash));
        if let Some(hash) = victim {
            self.buckets.remove(&hash);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes one token of the bucket of `hash` at `now`, with a TAT that moves `interval` ahead and may
    /// run `tolerance` ahead of now; whether it was admitted.
    fn take(buckets: &KeyedBuckets, hash: u64, now: u64, interval: u64, tolerance: u64) -> bool {
        buckets.update(hash, now, |arrival| {
            let start = arrival.max(now);
            if start - now <= tolerance { (true, Some(start + interval)) } else { (false, None) }
        })
    }

    #[test]
    fn each_key_has_its_own_bucket() {
        let buckets = KeyedBuckets::new(100);
        assert!(take(&buckets, 1, 0, 10, 0));
        assert!(!take(&buckets, 1, 0, 10, 0), "key 1 spent its one token");
        assert!(take(&buckets, 2, 0, 10, 0), "key 2 is untouched");
        assert!(take(&buckets, 1, 10, 10, 0), "key 1's token is back after an interval");
        assert_eq!(buckets.len(), 2);
    }

    #[test]
    fn a_full_bucket_is_dropped_before_a_busy_one() {
        let buckets = KeyedBuckets::new(2);
        assert!(take(&buckets, 1, 0, 100, 0));
        assert!(take(&buckets, 2, 50, 1_000, 0));
        // At 150, key 1's bucket is full again (TAT 100); key 2's is busy until 1050, though used later.
        assert!(take(&buckets, 3, 150, 100, 0));
        assert_eq!(buckets.len(), 2);
        assert!(!take(&buckets, 2, 150, 1_000, 0), "key 2 kept its state");
    }

    #[test]
    fn when_every_bucket_is_busy_the_least_recently_used_goes() {
        let buckets = KeyedBuckets::new(2);
        assert!(take(&buckets, 1, 0, 1_000, 0));
        assert!(take(&buckets, 2, 1, 1_000, 0));
        assert!(!take(&buckets, 1, 2, 1_000, 0), "a refusal counts as a use of key 1");
        assert!(take(&buckets, 3, 3, 1_000, 0));
        assert_eq!(buckets.len(), 2);
        assert!(take(&buckets, 2, 4, 1_000, 0), "key 2 was dropped: it starts full again");
        assert!(!take(&buckets, 3, 5, 1_000, 0), "key 3 kept its state");
    }

    #[test]
    fn memory_stays_within_max_keys_across_a_million_keys() {
        let buckets = KeyedBuckets::new(10_000);
        assert!(buckets.capacity() <= 10_000);
        for key in 0..1_000_000_u64 {
            // Every bucket stays busy for longer than the test: eviction is by least recent use throughout.
            let hash = key.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            assert!(take(&buckets, hash, key, u64::MAX / 2, 0));
            if key % 100_000 == 0 {
                assert!(buckets.len() <= 10_000, "{} buckets after {key} keys", buckets.len());
            }
        }
        assert!(buckets.len() <= 10_000, "{} buckets", buckets.len());
        assert!(buckets.len() >= 9_000, "the shards fill evenly: {} buckets", buckets.len());
    }

    #[test]
    fn shrinking_drops_buckets_at_once() {
        let buckets = KeyedBuckets::new(10);
        for hash in 0..10 {
            assert!(take(&buckets, hash, hash, 1_000, 0));
        }
        buckets.resize(4);
        assert_eq!(buckets.len(), 4);
        assert_eq!(buckets.capacity(), 4);
    }
}
