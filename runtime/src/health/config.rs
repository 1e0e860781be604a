//! [`HealthConfig`]: the timings and thresholds of the health checks.

use std::time::Duration;

/// Timings and thresholds of a [`HealthRegistry`](super::HealthRegistry) and its built-in checks.
///
/// Plain data with public fields; the `[health]` section of the configuration file maps onto it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HealthConfig {
    /// How long a check's result is reused before the check runs again, so that a storm of probes does
    /// not become a storm of queries against a dependency. Zero runs every check on every probe.
    /// Default: 1 second.
    pub cache_ttl: Duration,
    /// How long a check may run before it counts as unhealthy; a component can set its own. Keep it below
    /// the probe's `timeoutSeconds`, so the probe gets a 503 with a reason rather than no answer.
    /// Default: 1 second.
    pub check_timeout: Duration,
    /// How often the runtime watchdog measures the event loop's lag. Default: 100 milliseconds.
    pub watchdog_interval: Duration,
    /// Event-loop lag above which the watchdog fails the liveness probe. Default: 2 seconds.
    pub watchdog_max_lag: Duration,
    /// Audit events waiting (in the queue and in the overflow spill file) above which the audit check
    /// reports degraded. Default: 10,000.
    pub audit_max_backlog: u64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            cache_ttl: Duration::from_secs(1),
            check_timeout: Duration::from_secs(1),
            watchdog_interval: Duration::from_millis(100),
            watchdog_max_lag: Duration::from_secs(2),
            audit_max_backlog: 10_000,
        }
    }
}
