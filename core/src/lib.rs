//! The call core of [hardened](https://docs.rs/hardened): call sites and their spans, call metrics, the
//! guard kinds and the guard chain. Use it through `hardened`, which re-exports every public item here
//! at the same path (`hardened::breaker`, `hardened::metrics`, ...); the modules marked hidden are the
//! layers above's, not part of the API.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod breaker;
pub mod bulkhead;
pub mod clock;
pub mod concurrency;
pub mod events;
#[doc(hidden)]
pub mod guards;
pub mod hedge;
#[doc(hidden)]
pub mod keys;
#[doc(hidden)]
pub mod kind;
pub mod metrics;
#[doc(hidden)]
pub mod outcome;
pub mod rate_limit;
pub mod redact;
#[doc(hidden)]
pub mod rejected;
pub mod retry;
pub mod shutdown;
pub mod slo;
pub mod slots;
#[doc(hidden)]
pub mod support;

pub use crate::breaker::{BreakerState, CircuitBreaker};
pub use crate::bulkhead::Bulkhead;
pub use crate::concurrency::ConcurrencyLimit;
pub use crate::events::subscribe as events;
pub use crate::guards::site::{Site, sites};
pub use crate::guards::{
    breaker, breakers, bulkhead, bulkheads, concurrency_limit, concurrency_limits, hedge_policies, hedge_policy,
    rate_limiter, rate_limiters, retry_policies, retry_policy,
};
pub use crate::hedge::HedgePolicy;
pub use crate::outcome::Outcome;
pub use crate::rejected::Rejected;
