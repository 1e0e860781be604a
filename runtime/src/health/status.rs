//! What a check found: a status, a message and details.

use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

/// How healthy a component, a probe or the whole service is, from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Working as it should.
    Healthy,
    /// Working, with reduced capacity or a problem worth a look: still serves traffic.
    Degraded,
    /// Not working: a probe with an unhealthy critical check answers 503.
    Unhealthy,
}

impl HealthStatus {
    /// The JSON spelling: `healthy`, `degraded` or `unhealthy`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }

    /// The value of `hardened_health_status{component}`: 1 healthy, 0.5 degraded, 0 unhealthy, so that
    /// `min` over components is the worst of them and `< 1` alerts on anything short of healthy.
    #[must_use]
    pub fn gauge_value(self) -> f64 {
        match self {
            HealthStatus::Healthy => 1.0,
            HealthStatus::Degraded => 0.5,
            HealthStatus::Unhealthy => 0.0,
        }
    }

    /// Whether a probe with this status passes (answers 200): healthy or degraded.
    #[must_use]
    pub fn passes(self) -> bool {
        self != HealthStatus::Unhealthy
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one run of a check found.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    /// The component's status.
    pub status: HealthStatus,
    /// Why it is not healthy, or anything else worth a line in the detailed report.
    pub message: Option<String>,
    /// Facts for the detailed report (pool sizes, backlog counts, lag), as JSON.
    pub details: Map<String, Value>,
}

impl CheckResult {
    /// A healthy result, with no message.
    #[must_use]
    pub fn healthy() -> CheckResult {
        CheckResult { status: HealthStatus::Healthy, message: None, details: Map::new() }
    }

    /// A degraded result saying why.
    #[must_use]
    pub fn degraded(message: impl Into<String>) -> CheckResult {
        CheckResult { status: HealthStatus::Degraded, message: Some(message.into()), details: Map::new() }
    }

    /// An unhealthy result saying why.
    #[must_use]
    pub fn unhealthy(message: impl Into<String>) -> CheckResult {
        CheckResult { status: HealthStatus::Unhealthy, message: Some(message.into()), details: Map::new() }
    }

    /// Adds a detail.
    #[must_use]
    pub fn detail(mut self, key: impl Into<String>, value: impl Into<Value>) -> CheckResult {
        self.details.insert(key.into(), value.into());
        self
    }
}
