//! The faults the `faulty` tool injects, set at run time.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A failure rate and a latency, read by every call of the `faulty` tool.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    failure_percent: AtomicU32,
    latency_millis: AtomicU64,
}

/// The faults as the admin endpoint reads and writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FaultSettings {
    /// The share of calls that fail, from 0 to 100.
    pub(crate) failure_percent: u32,
    /// How long each call takes before it answers.
    pub(crate) latency_ms: u64,
}

impl Faults {
    /// The failure percentage and the latency in force.
    pub(crate) fn current(&self) -> (u32, Duration) {
        let percent = self.failure_percent.load(Ordering::Relaxed);
        (percent, Duration::from_millis(self.latency_millis.load(Ordering::Relaxed)))
    }

    /// Sets both, after checking the percentage.
    pub(crate) fn set(&self, settings: FaultSettings) -> Result<(), String> {
        if settings.failure_percent > 100 {
            return Err(format!("failure_percent = {}; allowed: 0 to 100", settings.failure_percent));
        }
        self.failure_percent.store(settings.failure_percent, Ordering::Relaxed);
        self.latency_millis.store(settings.latency_ms, Ordering::Relaxed);
        Ok(())
    }

    /// The settings in force.
    pub(crate) fn settings(&self) -> FaultSettings {
        let (failure_percent, latency) = self.current();
        FaultSettings { failure_percent, latency_ms: u64::try_from(latency.as_millis()).unwrap_or(u64::MAX) }
    }
}
