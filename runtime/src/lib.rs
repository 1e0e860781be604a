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
//! let this_module = format!(r#"module="{}""#, module_path!());
//! let failures = metrics
//!     .lines()
//!     .filter(|line| line.starts_with(r#"hardened_calls_total{function="lookup""#) && line.contains(&this_module))
//!     .find(|line| line.contains(r#"outcome="error""#))
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
//! | feature | what it adds |
//! | --- | --- |
//! | `telemetry` | `telemetry::init`: a subscriber with OTLP export; `propagation` of W3C trace context |
//! | `http` | (with `telemetry` and `tower`) `http`: the ops router, the request and trace layers for axum, a server with the graceful shutdown; `Rejected` as an axum response (429, 503, 504) |
//! | `tower` | [`tower::GuardLayer`]: the guards, chosen by name, around any tower service (docs/resilience.md, "Without the macro") |
//! | `reqwest` | (with `telemetry`) trace context injected into outbound `reqwest` requests |
//! | `postgres` | the `PostgreSQL` audit sink, verifier and report, and a health check of a `sqlx` pool |
//! | `redis` | rate limiters with `scope = "global"`: one bucket in Redis shared by every replica ([`rate_limit::Scope`]) |
//! | `testing` | an in-memory audit sink for tests |
//!
//! Everything else (the macro, metrics, guards, configuration, audit to JSONL, health checks, the
//! shutdown sequence) is always on. Building with `--cfg hardened_disabled` (in `RUSTFLAGS`) compiles
//! every `#[hardened]` out, to measure what the instrumentation costs; never in production.
//!
// The `tower` module's page, or without the feature, its page on docs.rs (built with every feature).
#![cfg_attr(feature = "tower", doc = "[`tower::GuardLayer`]: crate::tower::GuardLayer")]
#![cfg_attr(
    not(feature = "tower"),
    doc = "[`tower::GuardLayer`]: https://docs.rs/hardened/latest/hardened/tower/struct.GuardLayer.html"
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "http")]
pub mod admin;
pub mod config;
pub mod guard_states;
pub mod health;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "telemetry")]
pub mod propagation;
pub mod slo;
#[cfg(feature = "telemetry")]
mod span_context;
#[cfg(feature = "telemetry")]
mod span_ids;
#[cfg(feature = "telemetry")]
pub mod telemetry;
#[cfg(feature = "tower")]
pub mod tower;

// The layers below, re-exported at the paths they have always had. The crates are split so that Cargo
// keeps the graph one-way: `hardened-schema`, then `hardened-core`, then `hardened-audit`, then this one.
// `audit` is a module with a glob rather than `pub use hardened_audit as audit`, so that compile errors
// name its items `hardened::audit::..`, not by the crate's own name.
pub mod audit {
    //! The audit trail: typed events of who did what, when and with what outcome, written by a background
    //! pipeline that never loses one, into hash chains that prove the log complete and untouched, sealed by
    //! signed checkpoints (with [`AuditorBuilder::signing_key`]) that prove it authentic.
    //!
    //! ```
    //! use hardened::audit::{AuditEvent, AuditOutcome, Auditor, EventType, JsonlSink};
    //!
    //! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    //! # let directory = tempfile::tempdir().unwrap();
    //! let path = directory.path().join("audit.jsonl");
    //! let auditor = Auditor::builder()
    //!     .sink(JsonlSink::open(&path)?)
    //!     .spill_dir(directory.path().join("spill"))
    //!     .start()?;
    //!
    //! auditor.emit(AuditEvent::new(EventType::AuthorizationCheck).user_id("ada").outcome(AuditOutcome::Denied));
    //! auditor.flush().await?;
    //!
    //! assert!(hardened::audit::verify_jsonl(&path)?.is_intact());
    //! # Ok::<(), Box<dyn std::error::Error>>(())
    //! # }).unwrap();
    //! ```
    //!
    //! The items are those of the crate `hardened-audit`, the audit layer.

    #[doc(inline)]
    pub use hardened_audit::*;
}
pub use hardened_core::{
    breaker, bulkhead, clock, concurrency, events, hedge, metrics, rate_limit, redact, retry, shutdown, slots,
};
// The core's internal layers, for the operations here (not re-exported).
use hardened_core::{guards, keys, kind, outcome, support};

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
    #[doc = include_str!("../../docs/audit.md")]
    struct Audit;
    #[cfg(all(feature = "http", feature = "reqwest"))]
    #[doc = include_str!("../../docs/tracing.md")]
    struct Tracing;
    #[cfg(feature = "http")]
    #[doc = include_str!("../../docs/health-and-shutdown.md")]
    struct HealthAndShutdown;
}

// `breaker`, `bulkhead` and `events` are the modules above and, in the value namespace, the functions.
pub use hardened_core::rate_limit::RateLimiter;
pub use hardened_core::retry::RetryPolicy;
pub use hardened_core::{
    BreakerState, Bulkhead, CircuitBreaker, ConcurrencyLimit, HedgePolicy, Outcome, Rejected, Site, breakers,
    bulkheads, concurrency_limit, concurrency_limits, hedge_policies, hedge_policy, rate_limiter, rate_limiters,
    retry_policies, retry_policy, sites,
};

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
/// An `async fn` with a `breaker`, `rate`, `concurrency` or `bulkhead`, and neither `retry`, `timeout`
/// nor `audit`, becomes a plain `fn` returning `impl Future<Output = T>`: the guarded call's future
/// itself, which an `async fn` would hold and move. Callers see no difference: the arguments live in the future, and
/// the span, the metrics and the guards start at its first poll. It stays an `async fn` when an argument
/// is a pattern or `self` by value, or when another attribute macro follows (`#[async_trait]` on the
/// `impl` block, a test runner's attribute).
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
/// Histogram bounds in seconds for this function, replacing the defaults (5 µs to 5 minutes); the
/// configuration's `[metrics.<name>]` can replace them by kind or function.
///
/// ## `histogram = false`
/// No duration histogram for this function: its call counters (by outcome, in flight) and its guards'
/// metrics stay, `hardened_call_duration_seconds` and its exemplars go.
///
/// ```
/// # use hardened::hardened;
/// #[hardened(kind = "reducer", histogram = false)]
/// fn step(state: &mut Vec<u32>, action: u32) {
///     state.push(action);
/// }
/// # step(&mut Vec::new(), 1);
/// ```
///
/// ## `crate = ".."`
/// The path to this crate, for frameworks that re-export it.
///
/// ## `skip`
/// On a method inside an annotated `impl` block: leave this method alone.
///
/// ## `audit`, `audit(event = "..")`, `audit = arg`
/// One audit event per call, with the call's outcome (`Success`, `Denied` when a guard refused it,
/// `Failure` otherwise) and the function as its resource: `ToolExecution` for `audit` on a function of
/// `kind = "tool"`, the named type for `audit(event = "..")`, or the event the argument `arg` describes
/// through [`Audited`](macro@Audited). See the [`audit`] module.
///
/// ## `slo(name = "..", success = .., latency = "..", latency_target = ..)`, `slo = ".."`
/// The calls count towards a service level objective: `success` percent succeed, `latency_target`
/// percent finish within `latency` (a bound of the function's buckets). Nothing runs in the call; see the
/// [`slo`] module for the rules and alerts that judge it.
///
/// ## `rate(.., scope = "global")`
/// Where a rate limiter's bucket lives: `"local"` (the default: each process admits the whole rate) or
/// `"global"`, one bucket in Redis shared by every replica (feature `redis`; needs an `async fn`). The
/// guides (`docs/resilience.md`, `docs/scaling.md`) cover the other guard arguments.
///
/// ```ignore
/// #[hardened(rate(name = "anthropic", per_second = 50, burst = 100, scope = "global"))]
/// async fn complete(prompt: &str) -> Result<String, LlmError> { /* ... */ }
/// ```
pub use hardened_macros::hardened;

/// Implements [`audit::Audited`] for a struct or an enum: each value describes itself as an
/// [`audit::AuditRecord`], which [`AuditRecord::into_event`](audit::AuditRecord::into_event) completes
/// into an event.
///
/// ```
/// use hardened::Audited;
/// use hardened::audit::{AuditOutcome, Audited as _, EventType, REDACTED};
///
/// #[derive(Audited)]
/// enum Action {
///     /// Event type `AuthenticationAttempt`, a built-in one.
///     #[audited(event = "AuthenticationAttempt")]
///     Login {
///         #[audited(user_id)]
///         user: String,
///         #[audited(ip)]
///         from: std::net::IpAddr,
///         #[audited(redact)]
///         password: String,
///     },
///     /// Event type `Custom("Export")`, after the variant.
///     Export(u64, #[audited(skip)] Vec<u8>),
/// }
///
/// let login = Action::Login { user: "ada".into(), from: [192, 0, 2, 1].into(), password: "hunter2".into() };
/// let record = login.audit_record();
/// assert_eq!(record.event_type, EventType::AuthenticationAttempt);
/// assert_eq!(record.user_id.as_deref(), Some("ada"));
/// assert_eq!(record.details["password"], REDACTED);
/// assert!(!record.details.contains_key("user"));
///
/// let export = Action::Export(7, vec![1, 2, 3]).audit_record();
/// assert_eq!(export.event_type, EventType::Custom("Export".into()));
/// assert_eq!(export.details["0"], 7);
/// assert!(!export.details.contains_key("1"));
///
/// let event = login.audit_record().into_event(AuditOutcome::Denied);
/// assert_eq!(event.outcome, AuditOutcome::Denied);
/// ```
///
/// Enums (with unit, tuple and struct variants) and structs apply, generic ones too: a type parameter
/// that appears in a field written into the details must implement `serde::Serialize`, and the impl
/// requires it. Unions do not.
///
/// # Event types
///
/// Each variant is an event type named after the variant, a struct one named after the struct. A name
/// that is one of the [built-in event types](audit::EventType) is that event type, any other is
/// [`EventType::Custom`](audit::EventType::Custom).
///
/// # Details
///
/// Every field goes into the record's `details`, keyed by its name (by its position, `"0"`, `"1"`.., in
/// a tuple variant or struct), as the JSON `serde_json::to_value` makes of it, so the field's type must
/// implement `serde::Serialize`. A value that cannot be JSON at run time (a map whose keys are not
/// strings) is recorded as a string saying why, never as a panic. The attributes below change that.
///
/// # Attributes
///
/// ## `#[audited(event = "..")]`
/// On a variant or a struct: the event type's name instead of the variant's or struct's. ASCII letters,
/// digits, `_`, `.` and `-`, starting with a letter.
///
/// ```
/// # use hardened::{Audited, audit::{Audited as _, EventType}};
/// #[derive(Audited)]
/// #[audited(event = "ConfigurationChange")]
/// struct SetTimeout { seconds: u32 }
/// # assert_eq!(SetTimeout { seconds: 3 }.audit_record().event_type, EventType::ConfigurationChange);
/// ```
///
/// ## `#[audited(skip)]`
/// On a field: leave it out of the record. Its type needs nothing.
///
/// ## `#[audited(redact)]`
/// On a field: record [`REDACTED`](audit::REDACTED) (`"[redacted]"`) instead of the value, so the record
/// says the field was there and nothing more. Its type needs nothing.
///
/// ## `#[audited(redact = "hash")]`
/// On a field: record the value's [keyed hash](audit::keyed_hash) instead of the value: equal values
/// give equal hashes, so events can be correlated, and the value cannot be read back. Set the key with
/// [`audit::set_redaction_key`] to correlate across processes.
///
/// ```
/// # use hardened::{Audited, audit::Audited as _};
/// #[derive(Audited)]
/// struct Search {
///     #[audited(redact = "hash")]
///     email: String,
/// }
/// let (a, b) = (Search { email: "ada@example.com".into() }, Search { email: "ada@example.com".into() });
/// assert_eq!(a.audit_record().details["email"], b.audit_record().details["email"]);
/// ```
///
/// ## `#[audited(user_id)]`, `#[audited(session_id)]`
/// On a field: the record's `user_id` or `session_id`, as the field's `Display` text, and not a detail.
/// An `Option` field (written `Option<..>`) sets it only when it is `Some`; an event made from the record
/// takes the current [`audit::scope`]'s actor for what the record leaves unset. With
/// `redact = "hash"` too, the id is recorded as its keyed hash: a pseudonymous id. At most one field of
/// each kind per struct or variant.
///
/// ## `#[audited(ip)]`
/// On a field: the record's `ip_address`, and not a detail. The field is an `IpAddr`, `Ipv4Addr`,
/// `Ipv6Addr`, `SocketAddr`, a string holding an address (one that does not parse sets nothing), or an
/// `Option` of one of these.
///
/// ## `#[audited(crate = "..")]`
/// On the struct or enum: the path to this crate, for frameworks that re-export it.
///
/// # Errors
///
/// Each of these is a compile error pointing at what is wrong: a union, an unknown or repeated key, a
/// key out of place (`skip` on a variant, `event` on a field or on an enum), `skip` with `redact` or
/// with an actor key, plain `redact` on an id, `redact` on `ip`, two actor keys on one field, two fields
/// for one actor field, `redact` with a value other than `"hash"`, an empty or malformed event name, and
/// a field written into the details whose type does not implement `serde::Serialize`.
pub use hardened_macros::Audited;
