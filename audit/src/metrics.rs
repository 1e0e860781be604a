//! The pipeline's metrics, in hardened's registry.

use std::sync::{Mutex, OnceLock, PoisonError, Weak};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts};

use super::event::{AuditOutcome, EventType};

/// Counts of one pipeline's queue, read at scrape time.
pub(crate) trait QueueDepth: Send + Sync {
    /// Events waiting in the queue.
    fn depth(&self) -> usize;
}

/// The audit metrics, shared by every pipeline of the process.
pub(crate) struct AuditMetrics {
    /// `hardened_audit_events_total{sink,result}`.
    pub(crate) events: IntCounterVec,
    /// `hardened_audit_batch_duration_seconds{sink}`.
    pub(crate) batch_duration: HistogramVec,
    /// `hardened_audit_spilled_events{sink}`.
    pub(crate) spilled: IntGaugeVec,
    /// `hardened_audit_recorded_total{event_type,outcome}`.
    recorded: IntCounterVec,
    /// The series of `recorded` by built-in event type (in the order of [`EventType::BUILT_IN`]), then
    /// outcome (of [`AuditOutcome::ALL`]), looked up once: counting an event hashes no label.
    recorded_built_in: Vec<[IntCounter; AuditOutcome::ALL.len()]>,
    /// `hardened_audit_queue_depth`, set from the live pipelines' queues at each scrape.
    queue_depth: IntGauge,
    queues: Mutex<Vec<Weak<dyn QueueDepth>>>,
}

/// Every `result` of `hardened_audit_events_total`.
const RESULTS: [&str; 4] = ["written", "failed", "spilled", "replayed"];

impl AuditMetrics {
    /// Registers a pipeline's queue, counted in `hardened_audit_queue_depth` while it lives, and shows
    /// its overflow series at zero.
    pub(crate) fn add_queue(&self, queue: Weak<dyn QueueDepth>) {
        let mut queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
        queues.retain(|queue| queue.strong_count() > 0);
        queues.push(queue);
        self.events.with_label_values(&["queue", "spilled"]);
        self.events.with_label_values(&["queue", "rejected"]);
        self.spilled.with_label_values(&["queue"]);
    }

    /// Shows a sink's series at zero from its start, so that the first failure or spill is an increase
    /// that `rate()` and `increase()` see, not the appearance of a series.
    pub(crate) fn add_sink(&self, sink: &str) {
        for result in RESULTS {
            self.events.with_label_values(&[sink, result]);
        }
        self.batch_duration.with_label_values(&[sink]);
        self.spilled.with_label_values(&[sink]);
    }
}

/// The process's audit metrics, registered in [`hardened_core::metrics::registry`] on first use.
pub(crate) fn metrics() -> &'static AuditMetrics {
    static METRICS: OnceLock<&'static AuditMetrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let metrics: &'static AuditMetrics = Box::leak(Box::new(AuditMetrics::new()));
        if let Err(error) = hardened_core::metrics::registry().register(Box::new(Registered(metrics))) {
            tracing::error!(%error, "the audit metrics could not be registered");
        }
        metrics
    })
}

impl AuditMetrics {
    fn new() -> AuditMetrics {
        let events = IntCounterVec::new(
            Opts::new(
                "hardened_audit_events_total",
                "Audit events by sink and result: written, failed (in a write attempt that failed), spilled \
                 (kept in the sink's spill file while it is down; sink \"queue\" for the queue's overflow file), \
                 replayed (written from a spill file); sink \"queue\" result \"rejected\": overflow lines refused when read back \
                 (no valid authentication tag, or not an event), kept in the spill folder's quarantine.jsonl.",
            ),
            &["sink", "result"],
        )
        .expect("valid metric options");
        let batch_duration = HistogramVec::new(
            HistogramOpts::new("hardened_audit_batch_duration_seconds", "Time to write one batch to a sink.")
                .buckets(vec![0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0]),
            &["sink"],
        )
        .expect("valid metric options");
        let spilled = IntGaugeVec::new(
            Opts::new(
                "hardened_audit_spilled_events",
                "Audit events waiting in a local spill file: for a sink that is down, or (sink \"queue\") \
                 emitted while the queue was full.",
            ),
            &["sink"],
        )
        .expect("valid metric options");
        let queue_depth =
            IntGauge::new("hardened_audit_queue_depth", "Audit events emitted and not yet taken by the writer.")
                .expect("valid metric options");
        let recorded = IntCounterVec::new(
            Opts::new(
                "hardened_audit_recorded_total",
                "Audit events recorded (sealed into the hash chain, once each), by event type and outcome.",
            ),
            &["event_type", "outcome"],
        )
        .expect("valid metric options");
        // Every built-in series is there at zero from the start, so that a first denial is an increase.
        let recorded_built_in = EventType::BUILT_IN
            .iter()
            .map(|event_type| {
                AuditOutcome::ALL.map(|outcome| recorded.with_label_values(&[event_type.as_str(), outcome.as_str()]))
            })
            .collect();
        AuditMetrics {
            events,
            batch_duration,
            spilled,
            recorded,
            recorded_built_in,
            queue_depth,
            queues: Mutex::new(Vec::new()),
        }
    }

    /// Counts an event recorded in the hash chain.
    pub(crate) fn count_recorded(&self, event_type: &EventType, outcome: AuditOutcome) {
        let built_in = event_type.built_in_index();
        let outcome_index = AuditOutcome::ALL.iter().position(|each| *each == outcome);
        match (built_in, outcome_index) {
            (Some(type_index), Some(outcome_index)) => self.recorded_built_in[type_index][outcome_index].inc(),
            _ => self.recorded.with_label_values(&[event_type.as_str(), outcome.as_str()]).inc(),
        }
    }

    fn update_queue_depth(&self) {
        let queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
        let depth: usize = queues.iter().filter_map(Weak::upgrade).map(|queue| queue.depth()).sum();
        self.queue_depth.set(i64::try_from(depth).unwrap_or(i64::MAX));
    }
}

struct Registered(&'static AuditMetrics);

impl Collector for Registered {
    fn desc(&self) -> Vec<&Desc> {
        let metrics = self.0;
        let mut descs = metrics.events.desc();
        descs.extend(metrics.batch_duration.desc());
        descs.extend(metrics.spilled.desc());
        descs.extend(metrics.recorded.desc());
        descs.extend(metrics.queue_depth.desc());
        descs
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let metrics = self.0;
        let mut families = metrics.events.collect();
        families.extend(metrics.batch_duration.collect());
        families.extend(metrics.spilled.collect());
        families.extend(metrics.recorded.collect());
        metrics.update_queue_depth();
        families.extend(metrics.queue_depth.collect());
        families
    }
}
