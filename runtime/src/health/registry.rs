//! [`HealthRegistry`]: registered checks, run concurrently with timeouts, their results cached.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use super::check::{Component, Probe};
use super::config::HealthConfig;
use super::metrics;
use super::report::{ComponentHealth, HealthReport, ProbeReport};
use super::startup::StartupGate;
use super::status::{CheckResult, HealthStatus};

/// Why readiness fails during shutdown.
const SHUTTING_DOWN: &str = "shutting down: not taking new work";
/// Why startup fails until the gate is complete.
const STARTING: &str = "starting: initialisation not complete";

/// A set of named checks and the probes made of them. Cheap to clone: clones share the checks, their
/// cached results and the startup gate.
///
/// The process-wide one is [`registry()`](super::registry); tests and embedded uses make their own.
#[derive(Debug, Clone)]
pub struct HealthRegistry {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: RwLock<HealthConfig>,
    components: RwLock<BTreeMap<Arc<str>, Arc<Registered>>>,
    startup: StartupGate,
    /// Registers the checks of things made since the last probe (the process-wide registry's rate
    /// limiters), before each probe.
    refresh: Option<fn(&HealthRegistry)>,
}

/// A component and its latest result.
#[derive(Debug)]
struct Registered {
    component: Component,
    /// Held while the check runs, so that concurrent probes wait for one run instead of starting their own.
    latest: Mutex<Option<Latest>>,
}

#[derive(Debug)]
struct Latest {
    result: CheckResult,
    duration: Duration,
    finished_at: Instant,
}

impl HealthRegistry {
    /// A registry with no checks and a startup gate of its own, not complete.
    #[must_use]
    pub fn new(config: HealthConfig) -> HealthRegistry {
        HealthRegistry::with_refresh(config, StartupGate::new(), None)
    }

    pub(super) fn with_refresh(
        config: HealthConfig,
        startup: StartupGate,
        refresh: Option<fn(&HealthRegistry)>,
    ) -> HealthRegistry {
        let components = RwLock::new(BTreeMap::new());
        HealthRegistry { inner: Arc::new(Inner { config: RwLock::new(config), components, startup, refresh }) }
    }

    /// Whether a check called `name` is registered.
    #[cfg(feature = "redis")]
    pub(super) fn has(&self, name: &str) -> bool {
        self.inner.components.read().unwrap_or_else(PoisonError::into_inner).contains_key(name)
    }

    fn refresh(&self) {
        if let Some(refresh) = self.inner.refresh {
            refresh(self);
        }
    }

    /// Adds a check, replacing (and forgetting the results of) any check of the same name.
    pub fn register(&self, component: Component) {
        let name = Arc::clone(&component.name);
        let registered = Arc::new(Registered { component, latest: Mutex::new(None) });
        self.inner.components.write().unwrap_or_else(PoisonError::into_inner).insert(name, registered);
    }

    /// Removes the check called `name`, and its series of `hardened_health_status`; returns whether there
    /// was one.
    pub fn deregister(&self, name: &str) -> bool {
        let removed = self.inner.components.write().unwrap_or_else(PoisonError::into_inner).remove(name).is_some();
        if removed {
            metrics::forget(name);
        }
        removed
    }

    /// The names of the registered checks, sorted.
    #[must_use]
    pub fn names(&self) -> Vec<String> {
        self.refresh();
        self.inner.components.read().unwrap_or_else(PoisonError::into_inner).keys().map(ToString::to_string).collect()
    }

    /// The settings in force.
    #[must_use]
    pub fn config(&self) -> HealthConfig {
        self.inner.config.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Applies new settings: the cache lifetime and timeout apply from the next run of each check.
    pub fn set_config(&self, config: HealthConfig) {
        *self.inner.config.write().unwrap_or_else(PoisonError::into_inner) = config;
    }

    /// The gate the startup probe waits for.
    #[must_use]
    pub fn startup_gate(&self) -> &StartupGate {
        &self.inner.startup
    }

    /// The liveness probe: the liveness checks.
    pub async fn liveness(&self) -> ProbeReport {
        self.probe(Probe::Liveness).await
    }

    /// The readiness probe: the readiness checks, and unhealthy at once, without running them, once the
    /// shutdown has [begun](crate::shutdown::has_begun).
    pub async fn readiness(&self) -> ProbeReport {
        self.probe(Probe::Readiness).await
    }

    /// The startup probe: unhealthy until the [startup gate](Self::startup_gate) is complete, then the
    /// startup checks.
    pub async fn startup(&self) -> ProbeReport {
        self.probe(Probe::Startup).await
    }

    /// One probe. Its checks run concurrently, each bounded by its timeout; a result younger than the
    /// cache lifetime is reused instead of running the check again.
    pub async fn probe(&self, probe: Probe) -> ProbeReport {
        if let Some(reason) = self.refusal(probe) {
            return ProbeReport::failed(probe, reason);
        }
        ProbeReport::of_checks(probe, self.run(Some(probe)).await)
    }

    /// Every check (each run once, concurrently) and every probe: the detailed view. While shutting
    /// down, readiness fails and its checks are still reported.
    pub async fn report(&self) -> HealthReport {
        let components = self.run(None).await;
        let judge = |probe: Probe| {
            let of_probe = components.iter().filter(|component| component.probe == probe).cloned().collect();
            let report = ProbeReport::of_checks(probe, of_probe);
            match self.refusal(probe) {
                Some(reason) => {
                    ProbeReport { status: HealthStatus::Unhealthy, message: Some(reason.to_owned()), ..report }
                }
                None => report,
            }
        };
        let (liveness, readiness, startup) = (judge(Probe::Liveness), judge(Probe::Readiness), judge(Probe::Startup));
        let status = liveness.status.max(readiness.status).max(startup.status);
        HealthReport { status, shutting_down: crate::shutdown::has_begun(), liveness, readiness, startup, components }
    }

    /// Why `probe` fails whatever its checks say, if it does.
    fn refusal(&self, probe: Probe) -> Option<&'static str> {
        match probe {
            Probe::Readiness if crate::shutdown::has_begun() => Some(SHUTTING_DOWN),
            Probe::Startup if !self.inner.startup.is_complete() => Some(STARTING),
            _ => None,
        }
    }

    /// The results of the checks of `probe` (of every check for `None`), in name order. Each check runs
    /// in a task of its own: checks run in parallel, a panic in one is its result alone, and a run whose
    /// probe gave up still finishes and fills the cache.
    async fn run(&self, probe: Option<Probe>) -> Vec<ComponentHealth> {
        self.refresh();
        let config = self.config();
        let selected: Vec<Arc<Registered>> = self
            .inner
            .components
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter(|registered| probe.is_none_or(|probe| registered.component.probe == probe))
            .cloned()
            .collect();
        let runs: Vec<_> = selected
            .iter()
            .map(|registered| {
                let timeout = registered.component.timeout.unwrap_or(config.check_timeout);
                let ttl = registered.component.cache_ttl.unwrap_or(config.cache_ttl);
                tokio::spawn(Arc::clone(registered).latest(timeout, ttl))
            })
            .collect();
        let mut results = Vec::with_capacity(runs.len());
        for (registered, run) in selected.iter().zip(runs) {
            let health = run.await.unwrap_or_else(|error| {
                let reason = if error.is_panic() { "the check panicked" } else { "the check was cancelled" };
                metrics::record(&registered.component.name, HealthStatus::Unhealthy);
                registered.health(CheckResult::unhealthy(reason), Duration::ZERO, false)
            });
            results.push(health);
        }
        results
    }
}

impl Registered {
    /// The cached result if it is younger than `ttl`, else a fresh run bounded by `timeout`.
    async fn latest(self: Arc<Self>, timeout: Duration, ttl: Duration) -> ComponentHealth {
        let mut latest = self.latest.lock().await;
        if let Some(cached) = latest.as_ref().filter(|cached| cached.finished_at.elapsed() < ttl) {
            return self.health(cached.result.clone(), cached.duration, true);
        }
        let started = Instant::now();
        let result = tokio::time::timeout(timeout, self.component.check.check()).await.unwrap_or_else(|_| {
            CheckResult::unhealthy(format!("no answer within {}", humantime::format_duration(timeout)))
        });
        let finished_at = Instant::now();
        let duration = finished_at - started;
        metrics::record(&self.component.name, result.status);
        *latest = Some(Latest { result: result.clone(), duration, finished_at });
        self.health(result, duration, false)
    }

    fn health(&self, result: CheckResult, duration: Duration, cached: bool) -> ComponentHealth {
        let component = &self.component;
        ComponentHealth {
            name: component.name.to_string(),
            probe: component.probe,
            criticality: component.criticality,
            status: result.status,
            message: result.message,
            details: result.details,
            duration,
            cached,
        }
    }
}
