//! Health checks and the liveness, readiness and startup probes built on them.
//!
//! A [`HealthRegistry`] holds named checks ([`Component`]s), each in one probe, critical or
//! informational, with a timeout and a cached result. A probe runs its checks concurrently and is as bad
//! as its worst critical check; an informational check can degrade it, never fail it.
//!
//! ```
//! use hardened::health::{CheckResult, Component, HealthConfig, HealthRegistry, HealthStatus, check_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let health = HealthRegistry::new(HealthConfig::default());
//! health.register(Component::new("database", check_fn(|| async { CheckResult::healthy() })));
//! health.register(
//!     Component::new("search", check_fn(|| async { CheckResult::unhealthy("index offline") })).informational(),
//! );
//!
//! let readiness = health.readiness().await;
//! assert_eq!(readiness.status, HealthStatus::Degraded);
//! assert!(readiness.passes(), "an informational check cannot fail the probe");
//! assert_eq!(readiness.message.as_deref(), Some("degraded: search"));
//!
//! assert!(!health.startup().await.passes(), "startup fails until the gate is complete");
//! health.startup_gate().complete();
//! assert!(health.startup().await.passes());
//! # });
//! ```
//!
//! # Probes
//!
//! - **Liveness**: is the process working? Its checks are about the process only (the runtime
//!   [`Watchdog`]); failing it gets the process restarted.
//! - **Readiness**: can it take traffic now? Its critical checks pass, and the
//!   [shutdown](crate::shutdown) has not begun: once it has, readiness fails at once, without running
//!   its checks.
//! - **Startup**: has it finished starting? The [`StartupGate`] is complete ([`startup_complete`] for the
//!   process-wide one) and the startup checks pass.
//!
//! A probe is healthy, degraded (it passes: HTTP 200) or unhealthy (it fails: HTTP 503). Its status is
//! the worst [weight](ComponentHealth::weight) of its checks: a critical check weighs its status, an
//! informational one at most degraded. A check that does not answer within its timeout, or panics, is
//! unhealthy.
//!
//! # Caching
//!
//! A result is reused for [`HealthConfig::cache_ttl`] (or the component's own), so however many probes
//! arrive, a dependency sees at most one check per lifetime; probes arriving while a check runs wait for
//! that run rather than starting their own.
//!
//! # Metric
//!
//! Each run sets `hardened_health_status{component}` in [`crate::metrics::registry()`]: 1 healthy,
//! 0.5 degraded, 0 unhealthy.
//!
//! # Built-in checks
//!
//! The process-wide [`registry()`] starts with `breakers` ([`BreakerCheck`], readiness, informational)
//! and `audit` ([`AuditCheck`], readiness, critical); [`start_watchdog`] adds `runtime` (liveness,
//! critical). `PostgresCheck` (feature `postgres`) is registered by the application, which owns the
//! pool.

mod audit;
mod breakers;
mod check;
mod config;
mod metrics;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod rate_limiters;
mod registry;
mod report;
mod startup;
mod status;
mod watchdog;

use std::sync::OnceLock;

pub use self::audit::AuditCheck;
pub use self::breakers::BreakerCheck;
pub use self::check::{CheckFn, Component, Criticality, HealthCheck, Probe, check_fn};
pub use self::config::HealthConfig;
#[cfg(feature = "postgres")]
pub use self::postgres::PostgresCheck;
pub use self::registry::HealthRegistry;
pub use self::report::{ComponentHealth, HealthReport, ProbeReport};
pub use self::startup::StartupGate;
pub use self::status::{CheckResult, HealthStatus};
pub use self::watchdog::Watchdog;
pub use crate::support::BoxFuture;

/// The name of the built-in breaker check.
const BREAKERS: &str = "breakers";
/// The name of the built-in audit check.
const AUDIT: &str = "audit";
/// The name of the watchdog's check.
const RUNTIME: &str = "runtime";

/// The process-wide registry, behind `hardened::http::ops_router` (feature `http`): made on first use with
/// [`HealthConfig::default()`] and the built-in `breakers` and `audit` checks.
pub fn registry() -> &'static HealthRegistry {
    static GLOBAL: OnceLock<HealthRegistry> = OnceLock::new();
    GLOBAL.get_or_init(|| {
        let config = HealthConfig::default();
        #[cfg(feature = "redis")]
        let refresh: Option<fn(&HealthRegistry)> = Some(rate_limiters::register_new);
        #[cfg(not(feature = "redis"))]
        let refresh = None;
        let registry = HealthRegistry::with_refresh(config.clone(), StartupGate::new(), refresh);
        registry.register(Component::new(BREAKERS, BreakerCheck).informational());
        registry.register(audit_component(&config));
        registry
    })
}

fn audit_component(config: &HealthConfig) -> Component {
    Component::new(AUDIT, AuditCheck::global().backlog_threshold(config.audit_max_backlog))
}

static WATCHDOG: OnceLock<Watchdog> = OnceLock::new();

/// Starts the process-wide runtime [`Watchdog`] (once; later calls return it) with the settings of
/// [`registry()`], and registers it there as the critical liveness check `runtime`. It measures the
/// runtime it is first called in: call it from the service's main runtime.
///
/// # Panics
///
/// Outside a tokio runtime.
pub fn start_watchdog() -> &'static Watchdog {
    WATCHDOG.get_or_init(|| {
        let config = registry().config();
        let watchdog = Watchdog::start(config.watchdog_interval, config.watchdog_max_lag);
        registry().register(Component::new(RUNTIME, watchdog.clone()).liveness());
        watchdog
    })
}

/// Applies `config` to the process-wide registry, its audit check and, if it runs, its watchdog.
pub fn configure(config: HealthConfig) {
    let registry = registry();
    if let Some(watchdog) = WATCHDOG.get() {
        watchdog.retune(config.watchdog_interval, config.watchdog_max_lag);
    }
    registry.register(audit_component(&config));
    registry.set_config(config);
}

/// Marks the process as started: the process-wide startup probe passes from now on. Call it once
/// initialisation is done.
pub fn startup_complete() {
    registry().startup_gate().complete();
}
