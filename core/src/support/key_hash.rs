//! The hash of a guard's key (a tenant, a user, an API key), and maps that find a key's state by it.
//!
//! A key is hashed once per call with a per-process random seed, so nobody outside can pick keys that
//! share a bucket; the maps take the hash as it is instead of hashing it again.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::sync::LazyLock;

/// The seed of the keys' hashes, random per process.
static KEY_HASHER: LazyLock<foldhash::fast::RandomState> = LazyLock::new(foldhash::fast::RandomState::default);

/// A value that selects a keyed guard's share: a tenant, user or API key (`rate(key = user_id)`,
/// `bulkhead(key = tenant)`).
///
/// Two calls whose keys are equal share a bucket (or places). The key is shown by `Debug` only in
/// [`RateLimiter::top_refused`](crate::rate_limit::RateLimiter::top_refused), so a secret (an API key) is better
/// replaced by what identifies it (its id or tenant).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a guard's key: a `key` needs `Hash + Eq + Debug + Sync`",
    label = "this key's type lacks `Hash`, `Eq`, `Debug` or `Sync`",
    note = "each distinct key gets its own bucket or places: equal keys must hash alike, and an operator's list of the keys refused most shows them with `Debug`; key by an id, a `String` or a number"
)]
pub trait LimitKey: Hash + Eq + std::fmt::Debug + Sync {}

#[diagnostic::do_not_recommend]
impl<K: Hash + Eq + std::fmt::Debug + Sync> LimitKey for K {}

/// The hash of `key`, the same for equal keys within this process.
#[inline]
pub(crate) fn key_hash<K: Hash + ?Sized>(key: &K) -> u64 {
    KEY_HASHER.hash_one(key)
}

/// A map from a key's hash to its state.
pub(crate) type ByKeyHash<V> = HashMap<u64, V, BuildHasherDefault<Prehashed>>;

/// The hasher of [`ByKeyHash`]: a key's hash is already well mixed, and is taken as it is.
#[derive(Default)]
pub(crate) struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is called, with the key's hash; any other input is folded in for completeness.
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, hash: u64) {
        self.0 = hash;
    }
}

/// State kept per key, split over shards by the key's hash, so that calls for different keys rarely meet.
pub(crate) struct KeyShards<T> {
    shards: Box<[Padded<T>]>,
}

/// A shard on cache lines of its own, so that threads on different shards do not share one.
#[repr(align(128))]
struct Padded<T>(T);

impl<T: Default> KeyShards<T> {
    /// `count` shards, a power of two.
    pub(crate) fn new(count: usize) -> KeyShards<T> {
        debug_assert!(count.is_power_of_two(), "a power of two, so that a mask picks the shard");
        KeyShards { shards: (0..count).map(|_| Padded(T::default())).collect() }
    }
}

impl<T> KeyShards<T> {
    /// The shard that holds the key of `hash`: from the hash's middle bits, which a map's own slots (its
    /// low bits) and control bytes (its high bits) use least.
    #[inline]
    pub(crate) fn of(&self, hash: u64) -> &T {
        let index = usize::try_from(hash.rotate_right(32)).unwrap_or(0) & (self.shards.len() - 1);
        &self.shards[index].0
    }

    /// Every shard.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.shards.iter().map(|shard| &shard.0)
    }

    /// How many shards there are.
    pub(crate) fn len(&self) -> usize {
        self.shards.len()
    }
}
