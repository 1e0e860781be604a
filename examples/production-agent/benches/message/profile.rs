//! What one message makes, counted over a run of the load's mix: CPU (the process's and the request
//! thread's), spans, log lines, audit events and allocations. Printed before the timed benchmarks, and
//! written as JSON to `$MESSAGE_PROFILE` when set, for `scripts/breakdown.sh`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;
use tracing_subscriber::layer::SubscriberExt as _;

use crate::allocations::{Allocations, Counting};
use crate::cpu;
use crate::service::Agent;
use crate::subscribers::{Census, Telemetry};

/// Messages sent before counting, so that sessions, transcripts and caches are in their steady state.
const WARM_UP: usize = 2_000;

/// What one message costs and makes, on average over a run.
#[derive(Debug, Serialize)]
pub(crate) struct Profile {
    pub(crate) telemetry: &'static str,
    pub(crate) messages: usize,
    /// CPU of the whole process (the request's thread, the audit writer's, its checkpoints), in µs.
    pub(crate) cpu_us: f64,
    /// CPU of the thread that handled the requests, in µs.
    pub(crate) request_thread_cpu_us: f64,
    /// Spans created, by name.
    pub(crate) spans: BTreeMap<&'static str, f64>,
    pub(crate) spans_total: f64,
    pub(crate) spans_entered: f64,
    /// Events through the filters: log lines written.
    pub(crate) log_lines: f64,
    /// Audit events recorded in the chain, by type.
    pub(crate) audit_events: BTreeMap<String, f64>,
    pub(crate) audit_events_total: f64,
    /// `#[hardened]` calls, by function: each records its metrics.
    pub(crate) calls: BTreeMap<String, f64>,
    pub(crate) calls_total: f64,
    pub(crate) allocations: f64,
    pub(crate) allocated_bytes: f64,
    pub(crate) request_thread_allocations: f64,
    pub(crate) request_thread_allocated_bytes: f64,
}

/// Sends `messages` messages of the mix under `telemetry`'s subscriber, with a census layer added, and
/// counts. The audit pipeline is flushed at the end, inside the count, so that the writer's work for
/// those messages is in it (one fsync and one signed checkpoint per run, about 0.1 ms).
pub(crate) fn run(agent: &Agent, runtime: &tokio::runtime::Runtime, telemetry: Telemetry, messages: usize) -> Profile {
    let config = telemetry.config(&agent.settings);
    let census = Census::default();
    let subscriber = telemetry.subscriber(&agent.settings);
    let layer = census.layer(&config);
    let subscriber = subscriber.with(layer);
    tracing::subscriber::with_default(subscriber, || {
        let warm_up = (0..WARM_UP).map(|n| agent.message(n)).collect();
        runtime.block_on(async {
            agent.send_all(warm_up).await;
            hardened::audit::flush().await.expect("the audit trail is writable");
        });
        census.take();
        let requests = (0..messages).map(|n| agent.message(n)).collect();
        let (audit_before, calls_before) = (recorded_events(), calls());
        let (process_before, thread_before) = (cpu::process(), cpu::thread());
        let (all_before, this_before) = (Counting::all_threads(), Counting::this_thread());
        Counting::start();
        runtime.block_on(async {
            agent.send_all(requests).await;
            hardened::audit::flush().await.expect("the audit trail is writable");
        });
        Counting::stop();
        let (process, thread) =
            (cpu::process().saturating_sub(process_before), cpu::thread().saturating_sub(thread_before));
        let (all, this): (Allocations, Allocations) =
            (Counting::all_threads() - all_before, Counting::this_thread() - this_before);
        let counts = census.take();
        let audit = difference(&recorded_events(), &audit_before);
        let calls = difference(&calls(), &calls_before);
        let per = |total: u64| total as f64 / messages as f64;
        let micros = |time: Duration| time.as_secs_f64() * 1e6 / messages as f64;
        Profile {
            telemetry: telemetry.name(),
            messages,
            cpu_us: micros(process),
            request_thread_cpu_us: micros(thread),
            spans_total: per(counts.spans.values().sum()),
            spans: counts.spans.iter().map(|(name, count)| (*name, per(*count))).collect(),
            spans_entered: per(counts.entered),
            log_lines: per(counts.events),
            audit_events_total: per(audit.values().sum()),
            audit_events: audit.into_iter().map(|(kind, count)| (kind, per(count))).collect(),
            calls_total: per(calls.values().sum()),
            calls: calls.into_iter().map(|(function, count)| (function, per(count))).collect(),
            allocations: per(all.calls),
            allocated_bytes: per(all.bytes),
            request_thread_allocations: per(this.calls),
            request_thread_allocated_bytes: per(this.bytes),
        }
    })
}

/// `hardened_audit_recorded_total`, summed by event type.
fn recorded_events() -> BTreeMap<String, u64> {
    counter_by("hardened_audit_recorded_total", "event_type")
}

/// `hardened_calls_total`, summed by function.
fn calls() -> BTreeMap<String, u64> {
    counter_by("hardened_calls_total", "function")
}

/// The counter `name` of hardened's registry, summed by the value of its label `label`.
fn counter_by(name: &str, label: &str) -> BTreeMap<String, u64> {
    let mut sums = BTreeMap::new();
    for family in hardened::metrics::registry().gather() {
        if family.name() != name {
            continue;
        }
        for metric in family.get_metric() {
            let value = metric.get_label().iter().find(|pair| pair.name() == label).map_or("?", |pair| pair.value());
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "a counter of events")]
            let count = metric.get_counter().get_value() as u64;
            *sums.entry(value.to_owned()).or_default() += count;
        }
    }
    sums
}

fn difference(after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(kind, count)| (kind.clone(), count - before.get(kind).copied().unwrap_or(0)))
        .filter(|(_, count)| *count > 0)
        .collect()
}

impl Profile {
    /// The profile as the lines printed before the benchmarks.
    pub(crate) fn report(&self) -> String {
        let mut out = String::new();
        let _ =
            writeln!(out, "per message, {} telemetry ({} messages of the load.sh mix):", self.telemetry, self.messages);
        let _ = writeln!(
            out,
            "  CPU: {:.1} us in the process, {:.1} on the request thread, {:.1} on the others (audit writer)",
            self.cpu_us,
            self.request_thread_cpu_us,
            self.cpu_us - self.request_thread_cpu_us
        );
        let _ = writeln!(
            out,
            "  spans: {:.2} created, {:.2} entered ({})",
            self.spans_total,
            self.spans_entered,
            list(&self.spans)
        );
        let _ = writeln!(out, "  log lines: {:.2}", self.log_lines);
        let _ = writeln!(out, "  #[hardened] calls: {:.2} ({})", self.calls_total, list(&self.calls));
        let _ = writeln!(out, "  audit events: {:.2} ({})", self.audit_events_total, list(&self.audit_events));
        let _ = writeln!(
            out,
            "  allocations: {:.0} ({:.0} bytes); on the request thread {:.0} ({:.0} bytes)",
            self.allocations,
            self.allocated_bytes,
            self.request_thread_allocations,
            self.request_thread_allocated_bytes
        );
        out
    }
}

/// `name count, name count, ...`
fn list<K: std::fmt::Display>(counts: &BTreeMap<K, f64>) -> String {
    counts.iter().map(|(name, count)| format!("{name} {count:.2}")).collect::<Vec<_>>().join(", ")
}
