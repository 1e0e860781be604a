//! The list of guard kinds that have a name, a registry and a configuration section. Adding a kind is its
//! own folder (its settings and their keys, its live state, its [`GuardKind`](crate::kind::GuardKind)
//! implementation) plus one line here: the registries, the declarations of call sites, the configuration's
//! sections and the names functions declare are all generated from this list.

/// Calls `$callback!` with every kind, as `field: Guard, Settings, on_site, one, all;`: the configuration
/// table and call-site field, the guard's type, its section's type, the method of a call site's guards
/// that returns the site's guard of the kind, and the public functions that return one guard by name and
/// every guard of the kind.
#[macro_export]
#[doc(hidden)]
macro_rules! guard_kinds {
    ($callback:ident) => {
        $callback! {
            breaker: $crate::breaker::CircuitBreaker, $crate::breaker::BreakerSettings, breaker, breaker, breakers;
            rate: $crate::rate_limit::RateLimiter, $crate::rate_limit::RateSettings, rate_limiter, rate_limiter, rate_limiters;
            concurrency: $crate::concurrency::ConcurrencyLimit, $crate::concurrency::ConcurrencySettings, concurrency, concurrency_limit, concurrency_limits;
            bulkhead: $crate::bulkhead::Bulkhead, $crate::bulkhead::BulkheadSettings, bulkhead, bulkhead, bulkheads;
            retry: $crate::retry::RetryPolicy, $crate::retry::RetrySettings, retry, retry_policy, retry_policies;
            hedge: $crate::hedge::HedgePolicy, $crate::hedge::HedgeSettings, hedge, hedge_policy, hedge_policies;
        }
    };
}

pub use crate::guard_kinds;
