//! The [`HealthCheck`] trait, and a [`Component`]: a check with its name, probe, criticality and timing.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::status::CheckResult;
use crate::support::BoxFuture;

/// Looks at one dependency or part of the process and says how it is.
///
/// Object-safe, so a registry holds checks of any type; implement it on a type of your own, or make one
/// from an async closure with [`check_fn`]. The registry bounds each run with a timeout and caches the
/// result, so `check` need do neither.
///
/// ```
/// use hardened::health::{BoxFuture, CheckResult, HealthCheck};
///
/// struct Disk;
///
/// impl HealthCheck for Disk {
///     fn check(&self) -> BoxFuture<'_, CheckResult> {
///         Box::pin(async { CheckResult::healthy().detail("free_bytes", 1_u64 << 30) })
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a health check",
    note = "implement `hardened::health::HealthCheck`, or wrap an async closure in `hardened::health::check_fn`"
)]
pub trait HealthCheck: Send + Sync + 'static {
    /// Runs the check once.
    fn check(&self) -> BoxFuture<'_, CheckResult>;
}

/// A check made from an async closure, by [`check_fn`].
#[derive(Clone)]
pub struct CheckFn<F>(F);

impl<F> fmt::Debug for CheckFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CheckFn")
    }
}

/// A check that calls `check` on each run.
///
/// ```
/// use hardened::health::{CheckResult, check_fn};
///
/// let always_fine = check_fn(|| async { CheckResult::healthy() });
/// # let _ = always_fine;
/// ```
pub fn check_fn<F, Fut>(check: F) -> CheckFn<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = CheckResult> + Send + 'static,
{
    CheckFn(check)
}

impl<F, Fut> HealthCheck for CheckFn<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = CheckResult> + Send + 'static,
{
    fn check(&self) -> BoxFuture<'_, CheckResult> {
        Box::pin((self.0)())
    }
}

/// The probe a check belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Probe {
    /// Is the process itself working (its runtime, its event loop)? Failing it gets the process restarted,
    /// so its checks must be about the process only, never a dependency: a database outage must not
    /// restart every replica.
    Liveness,
    /// Can the service take traffic now? Failing it takes the replica out of the load balancer until it
    /// passes again. Dependencies belong here.
    Readiness,
    /// Has the service finished starting? Passes once the [startup gate](super::StartupGate) is complete
    /// and the startup checks pass.
    Startup,
}

impl Probe {
    /// Every probe, in the order of the detailed report.
    pub const ALL: [Probe; 3] = [Probe::Liveness, Probe::Readiness, Probe::Startup];

    /// The JSON spelling: `liveness`, `readiness` or `startup`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Probe::Liveness => "liveness",
            Probe::Readiness => "readiness",
            Probe::Startup => "startup",
        }
    }
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How much a check's status weighs in its probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Criticality {
    /// The probe is as bad as the check: an unhealthy critical check fails the probe.
    Critical,
    /// The check can degrade its probe, never fail it: an unhealthy informational check counts as degraded.
    Informational,
}

/// A check as registered: its name, the probe it belongs to, its criticality, and optionally its own
/// timeout and cache lifetime instead of the registry's.
///
/// ```
/// use std::time::Duration;
/// use hardened::health::{CheckResult, Component, Probe, check_fn};
///
/// let cache = Component::new("cache", check_fn(|| async { CheckResult::healthy() }))
///     .informational()
///     .timeout(Duration::from_millis(200))
///     .cache_for(Duration::from_secs(5));
/// assert_eq!(cache.probe(), Probe::Readiness);
/// ```
#[derive(Clone)]
pub struct Component {
    pub(super) name: Arc<str>,
    pub(super) check: Arc<dyn HealthCheck>,
    pub(super) probe: Probe,
    pub(super) criticality: Criticality,
    pub(super) timeout: Option<Duration>,
    pub(super) cache_ttl: Option<Duration>,
}

impl fmt::Debug for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Component")
            .field("name", &self.name)
            .field("probe", &self.probe)
            .field("criticality", &self.criticality)
            .field("timeout", &self.timeout)
            .field("cache_ttl", &self.cache_ttl)
            .finish_non_exhaustive()
    }
}

impl Component {
    /// A critical readiness check called `name`, with the registry's timeout and cache lifetime.
    pub fn new(name: impl Into<String>, check: impl HealthCheck) -> Component {
        Component {
            name: Arc::from(name.into()),
            check: Arc::new(check),
            probe: Probe::Readiness,
            criticality: Criticality::Critical,
            timeout: None,
            cache_ttl: None,
        }
    }

    /// Puts the check in `probe`.
    #[must_use]
    pub fn in_probe(mut self, probe: Probe) -> Component {
        self.probe = probe;
        self
    }

    /// Puts the check in the liveness probe: for checks of the process itself only.
    #[must_use]
    pub fn liveness(self) -> Component {
        self.in_probe(Probe::Liveness)
    }

    /// Puts the check in the startup probe.
    #[must_use]
    pub fn startup(self) -> Component {
        self.in_probe(Probe::Startup)
    }

    /// Makes the check informational: it can degrade its probe, never fail it.
    #[must_use]
    pub fn informational(mut self) -> Component {
        self.criticality = Criticality::Informational;
        self
    }

    /// Makes the check critical (the default): when it is unhealthy, so is its probe.
    #[must_use]
    pub fn critical(mut self) -> Component {
        self.criticality = Criticality::Critical;
        self
    }

    /// How long a run may take before it counts as unhealthy, instead of the registry's
    /// [`check_timeout`](super::HealthConfig::check_timeout).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Component {
        self.timeout = Some(timeout);
        self
    }

    /// How long a result is reused, instead of the registry's [`cache_ttl`](super::HealthConfig::cache_ttl).
    #[must_use]
    pub fn cache_for(mut self, ttl: Duration) -> Component {
        self.cache_ttl = Some(ttl);
        self
    }

    /// The check's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The probe the check belongs to.
    #[must_use]
    pub fn probe(&self) -> Probe {
        self.probe
    }

    /// The check's criticality.
    #[must_use]
    pub fn criticality(&self) -> Criticality {
        self.criticality
    }
}
