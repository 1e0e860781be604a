//! Production-ready tokio services with one line per function.
//!
//! `#[hardened]` wraps a function so that every call gets a tracing span, Prometheus metrics and a place
//! in the call-site registry, resolved once at compile time and cheap on every call:
//!
//! ```
//! use hardened::hardened;
//!
//! #[derive(Debug)]
//! struct LookupError;
//!
//! impl std::fmt::Display for LookupError {
//!     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
//!         f.write_str("no such user")
//!     }
//! }
//!
//! #[hardened(kind = "tool", fields(user_id))]
//! fn lookup(user_id: u64) -> Result<&'static str, LookupError> {
//!     if user_id == 7 { Ok("ada") } else { Err(LookupError) }
//! }
//!
//! assert_eq!(lookup(7).unwrap(), "ada");
//! assert!(lookup(8).is_err());
//!
//! let metrics = hardened::metrics::render();
//! let failures = metrics
//!     .lines()
//!     .find(|line| line.starts_with(r#"hardened_calls_total{function="lookup""#) && line.contains(r#"outcome="error""#))
//!     .unwrap();
//! assert!(failures.ends_with(" 1"));
//! assert!(hardened::sites().iter().any(|site| site.name() == "lookup"));
//! ```
//!
//! # What a call does
//!
//! - A span named after the function, with `code.function`, `code.namespace`, `hardened.kind`,
//!   `otel.kind = "internal"` and the fields asked for; a failure sets `otel.status_code = "ERROR"` and
//!   `error.message`. An async call enters its span on each poll only.
//! - `hardened_calls_total{function,module,kind,outcome}`, `hardened_call_duration_seconds{function,module,kind}`
//!   and `hardened_in_flight{function,module,kind}` in [`metrics::registry()`].
//! - Outcomes: `ok`, `error` (by `Ok`/`Err`, or `ok_if`/`error_if`), `cancelled` (the future was dropped) and
//!   `panic` (the panic propagates unchanged).
//!
//! The full argument reference is on [`macro@hardened`]; guides are in the repository's `docs/`.
//!
//! # Feature flags
//!
//! None yet: everything described here is always on.

pub mod breaker;
pub mod bulkhead;
mod call;
pub mod clock;
pub mod config;
mod guard_metrics;
mod guarded;
mod guards;
mod instrument;
pub mod metrics;
mod outcome;
pub mod rate_limit;
mod rejected;
pub mod retry;
mod site;

#[doc(hidden)]
pub mod __private;

/// The examples of the README and the guides, compiled and run as doctests.
#[cfg(doctest)]
mod guide_examples {
    #[doc = include_str!("../../README.md")]
    struct Readme;
    #[doc = include_str!("../../docs/attributes.md")]
    struct Attributes;
    #[doc = include_str!("../../docs/metrics.md")]
    struct Metrics;
    #[doc = include_str!("../../docs/resilience.md")]
    struct Resilience;
    #[doc = include_str!("../../docs/configuration.md")]
    struct Configuration;
}

pub use crate::breaker::{BreakerState, CircuitBreaker};
pub use crate::bulkhead::Bulkhead;
pub use crate::guards::{
    breaker, breakers, bulkhead, bulkheads, rate_limiter, rate_limiters, retry_policies, retry_policy,
};
pub use crate::outcome::Outcome;
pub use crate::rate_limit::RateLimiter;
pub use crate::rejected::Rejected;
pub use crate::retry::RetryPolicy;
pub use crate::site::{Site, sites};

/// Wraps a function, method or `impl` block with a span, metrics and a place in the call-site registry.
///
/// ```
/// # use hardened::hardened;
/// #[hardened(kind = "reducer", level = "debug")]
/// fn reduce(state: &mut Vec<u32>, action: u32) {
///     state.push(action);
/// }
/// # let mut state = Vec::new();
/// # reduce(&mut state, 1);
/// # assert_eq!(state, [1]);
/// ```
///
/// It applies to free functions, inherent and trait-impl methods, generic functions, functions with
/// lifetimes and `impl Trait` arguments, sync and `async fn` (in traits too), and `#[async_trait]`
/// methods. On an `impl` block it applies to every method; `#[hardened(skip)]` opts one out and a
/// method's own `#[hardened(..)]` refines the block's arguments.
///
/// # Arguments
///
/// Every value is a literal, so every label value is known at compile time.
///
/// ## `name = ".."`
/// The span name and `function` label. Default: the function's name. ASCII letters, digits, `_`, `.`,
/// `:` and `-` only.
///
/// ## `kind = ".."`
/// A free label such as `tool`, `reducer`, `llm` or `handler`. Default: `function`.
///
/// ## `level = ".."`
/// The span's level: `trace`, `debug`, `info` (default), `warn` or `error`.
///
/// ## `fields(..)`
/// Span fields. Arguments are never recorded unless named here: `fields(user_id)` records the argument,
/// `fields(len = query.len())` an expression. Values are recorded as tracing values where they are, else
/// by `Display`, else by `Debug`.
///
/// ## `ok_if = path`, `error_if = path`
/// A function `fn(&Return) -> bool` that decides the outcome instead of `Ok`/`Err`.
///
/// ```
/// # use hardened::hardened;
/// fn found(status: &u16) -> bool { *status < 500 }
///
/// #[hardened(ok_if = found)]
/// fn fetch(path: &str) -> u16 { if path == "/" { 200 } else { 503 } }
/// # assert_eq!(fetch("/"), 200);
/// ```
///
/// ## `span = false`, `metrics = false`
/// Turn off the span or the metrics of one function.
///
/// ## `buckets = [..]`
/// Histogram bounds in seconds for this function, replacing the defaults (5 µs to 5 minutes).
///
/// ## `crate = ".."`
/// The path to this crate, for frameworks that re-export it.
///
/// ## `skip`
/// On a method inside an annotated `impl` block: leave this method alone.
pub use hardened_macros::hardened;
