//! What one call takes from a rate limiter ([`Demand`]: a bucket and a number of tokens), and the receipt
//! it gets back ([`Ticket`]), with which the tokens it really used are settled after the call.

use std::fmt;

pub use crate::support::key_hash::LimitKey;
use crate::support::key_hash::key_hash;

/// A number of tokens a call takes (`rate(cost = ..)`): any unsigned integer.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a number of tokens: a `cost` is an unsigned integer (`u32`, `u64`, `usize`)",
    label = "this cost is a `{Self}`",
    note = "a weighted limiter takes `cost` tokens from its bucket before the call runs"
)]
pub trait Tokens: Copy {
    /// The count as a `u64`, saturating.
    fn tokens(self) -> u64;
}

macro_rules! tokens {
    ($($ty:ty),*) => {$(
        impl Tokens for $ty {
            #[inline]
            fn tokens(self) -> u64 {
                u64::try_from(self).unwrap_or(u64::MAX)
            }
        }
    )*};
}

tokens!(u8, u16, u32, u64, usize);

/// The key of one call: its hash, and the key itself to show when it is refused.
#[derive(Clone, Copy)]
pub(crate) struct CallKey<'a> {
    pub(crate) hash: u64,
    pub(crate) shown: &'a (dyn fmt::Debug + Sync),
}

/// What one call asks of a rate limiter: `cost` tokens, from the bucket of its key or, without one, from
/// the limiter's single bucket.
#[derive(Clone, Copy)]
#[must_use]
pub struct Demand<'a> {
    pub(crate) key: Option<CallKey<'a>>,
    pub(crate) cost: u64,
}

impl fmt::Debug for Demand<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Demand").field("key", &self.key.map(|key| key.shown)).field("cost", &self.cost).finish()
    }
}

impl Demand<'static> {
    /// One token from the limiter's single bucket: what a call of an unkeyed, unweighted limiter takes.
    pub const ONE: Demand<'static> = Demand { key: None, cost: 1 };

    /// `cost` tokens from the limiter's single bucket.
    pub fn tokens(cost: impl Tokens) -> Demand<'static> {
        Demand { key: None, cost: cost.tokens() }
    }
}

impl<'a> Demand<'a> {
    /// `cost` tokens from the bucket of `key`.
    pub fn keyed<K: LimitKey>(key: &'a K, cost: impl Tokens) -> Demand<'a> {
        Demand { key: Some(CallKey { hash: key_hash(key), shown: key }), cost: cost.tokens() }
    }

    /// The tokens asked for.
    #[must_use]
    pub fn cost(&self) -> u64 {
        self.cost
    }
}

/// The receipt of tokens a rate limiter granted, for [`RateLimiter::settle`](super::RateLimiter::settle)
/// to refund or charge the difference once the call knows what it really used. Dropping it keeps the
/// tokens taken.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a ticket is settled with what the call used, or dropped to keep what it took"]
pub struct Ticket {
    pub(crate) cost: u64,
    pub(crate) bucket: Taken,
}

/// Which bucket a ticket's tokens came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Taken {
    /// This limiter's own: its single bucket, or a key's (by the key's hash).
    Here(Option<u64>),
    /// A global limiter's replica share, decided here while Redis was unavailable or not asked.
    #[cfg(feature = "redis")]
    Share(Option<u64>),
    /// The bucket in Redis under this key.
    #[cfg(feature = "redis")]
    Shared(String),
}

impl Ticket {
    /// The tokens taken.
    #[must_use]
    pub fn cost(&self) -> u64 {
        self.cost
    }
}
