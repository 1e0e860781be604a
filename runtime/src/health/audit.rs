//! The audit pipeline check: events held back in a queue or spill files, or a writer that stopped.

use serde_json::{Map, Value};

use super::check::HealthCheck;
use super::status::CheckResult;
use crate::audit::{Auditor, AuditorStatus};
use crate::support::BoxFuture;

/// How an audit pipeline is doing, from [`Auditor::status`]:
///
/// - unhealthy when its writer has stopped (events only reach the overflow spill file);
/// - degraded when a sink is down (its events wait, safe, in the sink's spill file) or when more events
///   than the backlog threshold wait in the queue and the overflow spill file;
/// - healthy otherwise.
///
/// No event is lost in any of these states; the check says how far the written trail is behind.
#[derive(Debug, Clone)]
pub struct AuditCheck {
    pipeline: Pipeline,
    backlog_threshold: u64,
}

#[derive(Debug, Clone)]
enum Pipeline {
    /// The process-wide pipeline, once it is installed or started; this check never starts it.
    Global,
    Own(Auditor),
}

impl AuditCheck {
    /// A check of the process-wide pipeline (healthy while none is started), with the default threshold.
    #[must_use]
    pub fn global() -> AuditCheck {
        AuditCheck { pipeline: Pipeline::Global, backlog_threshold: super::HealthConfig::default().audit_max_backlog }
    }

    /// A check of `auditor`, with the default threshold.
    #[must_use]
    pub fn new(auditor: Auditor) -> AuditCheck {
        AuditCheck { pipeline: Pipeline::Own(auditor), ..AuditCheck::global() }
    }

    /// Degraded when more events than `threshold` wait in the queue and the overflow spill file.
    #[must_use]
    pub fn backlog_threshold(mut self, threshold: u64) -> AuditCheck {
        self.backlog_threshold = threshold;
        self
    }

    fn judge(&self, status: &AuditorStatus) -> CheckResult {
        let backlog = status.queued + status.overflow;
        let result = if status.stopped {
            CheckResult::unhealthy("the audit writer has stopped; events wait in the overflow spill file")
        } else if !status.sinks_down.is_empty() {
            let down: Vec<String> = status
                .sinks_down
                .iter()
                .map(|sink| format!("{} ({} events spilled)", sink.sink, sink.events))
                .collect();
            CheckResult::degraded(format!("audit sinks down, their events kept in spill files: {}", down.join(", ")))
        } else if backlog > self.backlog_threshold {
            CheckResult::degraded(format!(
                "{backlog} audit events waiting to be written, over the threshold of {}",
                self.backlog_threshold
            ))
        } else {
            CheckResult::healthy()
        };
        let sinks_down: Map<String, Value> =
            status.sinks_down.iter().map(|sink| (sink.sink.clone(), Value::from(sink.events))).collect();
        result
            .detail("queued", status.queued)
            .detail("overflow", status.overflow)
            .detail("sinks_down", sinks_down)
            .detail("backlog_threshold", self.backlog_threshold)
    }
}

impl HealthCheck for AuditCheck {
    fn check(&self) -> BoxFuture<'_, CheckResult> {
        let auditor = match &self.pipeline {
            Pipeline::Global => crate::audit::started(),
            Pipeline::Own(auditor) => Some(auditor),
        };
        let result = auditor
            .map_or_else(|| CheckResult::healthy().detail("started", false), |auditor| self.judge(&auditor.status()));
        Box::pin(std::future::ready(result))
    }
}
