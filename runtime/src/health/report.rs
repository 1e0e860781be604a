//! Reports of a run: one component, one probe, and the whole service; their JSON shapes.

use std::time::Duration;

use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use super::check::{Criticality, Probe};
use super::status::HealthStatus;

/// One check's latest result, as a probe saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentHealth {
    /// The check's name.
    pub name: String,
    /// The probe it belongs to.
    pub probe: Probe,
    /// How much it weighs in its probe.
    pub criticality: Criticality,
    /// What the check found (a timeout or a panic is unhealthy).
    pub status: HealthStatus,
    /// Why, when the check said.
    pub message: Option<String>,
    /// The check's details.
    pub details: Map<String, Value>,
    /// How long the run that produced this result took.
    pub duration: Duration,
    /// Whether the result came from the cache rather than from a run for this probe.
    pub cached: bool,
}

impl ComponentHealth {
    /// What the component counts as in its probe: its status if it is critical; at worst degraded if it
    /// is informational.
    #[must_use]
    pub fn weight(&self) -> HealthStatus {
        match self.criticality {
            Criticality::Critical => self.status,
            Criticality::Informational => self.status.min(HealthStatus::Degraded),
        }
    }
}

/// `{"status", "probe", "criticality", "message", "details", "duration_ms", "cached"}`; the name is the
/// key it is listed under.
impl Serialize for ComponentHealth {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut fields = serializer.serialize_struct("ComponentHealth", 7)?;
        fields.serialize_field("status", &self.status)?;
        fields.serialize_field("probe", &self.probe)?;
        fields.serialize_field("criticality", &self.criticality)?;
        fields.serialize_field("message", &self.message)?;
        fields.serialize_field("details", &self.details)?;
        fields.serialize_field("duration_ms", &(self.duration.as_secs_f64() * 1000.0))?;
        fields.serialize_field("cached", &self.cached)?;
        fields.end()
    }
}

/// The answer of one probe.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeReport {
    /// Which probe.
    pub probe: Probe,
    /// The worst [weight](ComponentHealth::weight) of its checks, or unhealthy when the probe fails for a
    /// reason of its own (shutdown begun, startup not complete).
    pub status: HealthStatus,
    /// Why it is not healthy: the probe's own reason, or the checks at fault.
    pub message: Option<String>,
    /// Its checks' results, by name (none when the probe failed before running them).
    pub components: Vec<ComponentHealth>,
}

impl ProbeReport {
    /// A probe judged by its checks.
    pub(super) fn of_checks(probe: Probe, components: Vec<ComponentHealth>) -> ProbeReport {
        let status = components.iter().map(ComponentHealth::weight).max().unwrap_or(HealthStatus::Healthy);
        let message = (status != HealthStatus::Healthy).then(|| {
            let at_fault: Vec<&str> = components
                .iter()
                .filter(|component| component.weight() == status)
                .map(|component| component.name.as_str())
                .collect();
            format!("{status}: {}", at_fault.join(", "))
        });
        ProbeReport { probe, status, message, components }
    }

    /// A probe that fails for a reason of its own, before its checks.
    pub(super) fn failed(probe: Probe, message: impl Into<String>) -> ProbeReport {
        ProbeReport { probe, status: HealthStatus::Unhealthy, message: Some(message.into()), components: Vec::new() }
    }

    /// Whether the probe passes: healthy or degraded (HTTP 200), not unhealthy (HTTP 503).
    #[must_use]
    pub fn passes(&self) -> bool {
        self.status.passes()
    }

    /// The result of the check called `name`, if the probe ran it.
    #[must_use]
    pub fn component(&self, name: &str) -> Option<&ComponentHealth> {
        self.components.iter().find(|component| component.name == name)
    }
}

/// The body of a probe endpoint: `{"probe", "status", "message", "checks": {name: status}}`.
impl Serialize for ProbeReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut fields = serializer.serialize_struct("ProbeReport", 4)?;
        fields.serialize_field("probe", &self.probe)?;
        fields.serialize_field("status", &self.status)?;
        fields.serialize_field("message", &self.message)?;
        fields.serialize_field("checks", &StatusByName(&self.components))?;
        fields.end()
    }
}

struct StatusByName<'a>(&'a [ComponentHealth]);

impl Serialize for StatusByName<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for component in self.0 {
            map.serialize_entry(&component.name, &component.status)?;
        }
        map.end()
    }
}

/// Every probe and every check: the detailed view at `/health`.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthReport {
    /// The worst of the three probes.
    pub status: HealthStatus,
    /// Whether the process is shutting down.
    pub shutting_down: bool,
    /// The liveness probe.
    pub liveness: ProbeReport,
    /// The readiness probe. While shutting down it fails, and its checks are still run for this report.
    pub readiness: ProbeReport,
    /// The startup probe.
    pub startup: ProbeReport,
    /// Every check's result, by name.
    pub components: Vec<ComponentHealth>,
}

impl HealthReport {
    /// The result of the check called `name`.
    #[must_use]
    pub fn component(&self, name: &str) -> Option<&ComponentHealth> {
        self.components.iter().find(|component| component.name == name)
    }
}

/// `{"status", "shutting_down", "probes": {probe: {"status", "message"}}, "checks": {name: {..}}}`.
impl Serialize for HealthReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut fields = serializer.serialize_struct("HealthReport", 4)?;
        fields.serialize_field("status", &self.status)?;
        fields.serialize_field("shutting_down", &self.shutting_down)?;
        fields.serialize_field("probes", &Probes(self))?;
        fields.serialize_field("checks", &ComponentsByName(&self.components))?;
        fields.end()
    }
}

struct Probes<'a>(&'a HealthReport);

impl Serialize for Probes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(3))?;
        for probe in [&self.0.liveness, &self.0.readiness, &self.0.startup] {
            map.serialize_entry(probe.probe.as_str(), &ProbeSummary(probe))?;
        }
        map.end()
    }
}

struct ProbeSummary<'a>(&'a ProbeReport);

impl Serialize for ProbeSummary<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut fields = serializer.serialize_struct("ProbeSummary", 2)?;
        fields.serialize_field("status", &self.0.status)?;
        fields.serialize_field("message", &self.0.message)?;
        fields.end()
    }
}

struct ComponentsByName<'a>(&'a [ComponentHealth]);

impl Serialize for ComponentsByName<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for component in self.0 {
            map.serialize_entry(&component.name, component)?;
        }
        map.end()
    }
}
