//! The audit trail of [hardened](https://docs.rs/hardened): typed events, the pipeline that writes
//! them, hash chains and signed checkpoints, the JSONL and `PostgreSQL` sinks with their verifiers, and the
//! security report. Use it as `hardened::audit`, whose documentation is the guide; every public item here
//! is there at the same name.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod audited;
#[doc(hidden)]
pub mod call;
mod chain;
mod checkpoint;
mod context;
#[doc(hidden)]
pub mod derive_support;
mod event;
mod files;
mod jsonl;
mod keys;
mod metrics;
mod pipeline;
#[cfg(feature = "postgres")]
mod postgres;
mod report;
mod schedule;
mod sink;
mod spill_auth;
mod trace;
mod verify;

use std::sync::OnceLock;

pub use self::audited::{AuditRecord, Audited, REDACTED, keyed_hash, set_redaction_key};
#[cfg(feature = "testing")]
pub use self::chain::seal_stream;
pub use self::chain::{ChainProblem, GENESIS_HASH, Location, SealedEvent, Verification};
pub use self::checkpoint::{
    Checkpoint, CheckpointError, CheckpointFile, CheckpointHead, CheckpointReason, CheckpointSink, Checkpoints,
    Removed, RemovedRun, TracingCheckpoints,
};
#[doc(hidden)]
pub use self::context::scoped;
pub use self::context::{AuditContext, current as current_context, scope, sync_scope};
pub use self::event::{AuditEvent, AuditOutcome, Details, EventType};
pub use self::files::MAX_LINE_BYTES;
pub use self::jsonl::{DEFAULT_KEEP, DEFAULT_MAX_BYTES, JsonlLocation, JsonlRecord, JsonlSink, read_jsonl};
pub use self::keys::{AuditPublicKey, AuditSigningKey, KeyError};
pub use self::pipeline::{AuditError, Auditor, AuditorBuilder, AuditorStatus, PendingSink};
#[cfg(feature = "postgres")]
#[doc(hidden)]
pub use self::postgres::OneInsertPerEventSink;
#[cfg(feature = "postgres")]
pub use self::postgres::{
    CheckpointTable, PostgresSink, RETENTION_CHAIN, STREAMS_CHAIN, migrate_postgres, postgres_in_schema,
    seal_postgres_streams, tx_stream, verify_postgres, verify_postgres_all, verify_postgres_all_with,
    verify_postgres_with, write_in_tx, write_in_tx_to,
};
#[cfg(feature = "postgres")]
pub use self::postgres::{DroppedPartition, RemovedByPolicy, drop_partitions_before, removed_by_policy};
pub use self::report::{
    ATTEMPTS_DETAIL, AuthenticationBurst, FailingTool, GuardTransition, MAX_ATTEMPTS, MAX_GUARD_TRANSITIONS,
    ReportError, ReportOptions, SecurityReport, Subject,
};
#[cfg(feature = "testing")]
pub use self::sink::MemorySink;
pub use self::sink::{Sink, SinkError, StdoutSink};
pub use self::trace::{TraceIds, set_trace_source};
pub use self::verify::{VerifyOptions, verify_jsonl, verify_jsonl_with};
pub use hardened_core::support::{BoxFuture, service_name, set_service_name};

static GLOBAL: OnceLock<Auditor> = OnceLock::new();

/// Makes `auditor` the process-wide pipeline, behind [`emit`], [`flush`] and `#[hardened(audit)]`,
/// and registers [`flush`] as a [shutdown handler](hardened_core::shutdown). The first one installed stays; a
/// later one is handed back.
pub fn install(auditor: Auditor) -> Result<(), Auditor> {
    GLOBAL.set(auditor)?;
    register_flush_at_shutdown();
    record_guard_transitions();
    Ok(())
}

/// Records every circuit breaker's change of state as a [`EventType::GuardTransition`] event on the
/// process-wide pipeline, from the moment there is one: `resource` is `breaker/<name>`, the details
/// `from` and `to`.
fn record_guard_transitions() {
    hardened_core::events::observe_transitions(|name, from, to| {
        if let Some(auditor) = GLOBAL.get() {
            auditor.emit(
                AuditEvent::new(EventType::GuardTransition)
                    .resource(format!("breaker/{name}"))
                    .detail("from", from)
                    .detail("to", to),
            );
        }
    });
}

/// Registers [`flush`] as a [shutdown handler](hardened_core::shutdown), once.
fn register_flush_at_shutdown() {
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| {
        hardened_core::shutdown::register(
            "audit flush",
            hardened_core::shutdown::priority::AUDIT,
            std::time::Duration::from_secs(10),
            || async { flush().await.map_err(|error| error.to_string()) },
        );
    });
}

/// The process-wide pipeline: the one [`install`]ed, else one started at first use with a
/// [`JsonlSink`] on `audit/audit.jsonl` (or the file `HARDENED_AUDIT_PATH` names) and its spill files
/// in `spill/` beside it. If that file cannot be opened, events go to standard output instead, with an
/// error logged.
///
/// # Panics
///
/// If neither pipeline can start: no thread or no runtime could be made for the writer.
pub fn global() -> &'static Auditor {
    GLOBAL.get_or_init(|| {
        register_flush_at_shutdown();
        record_guard_transitions();
        let path = std::env::var_os("HARDENED_AUDIT_PATH")
            .map_or_else(|| std::path::PathBuf::from("audit/audit.jsonl"), std::path::PathBuf::from);
        let spill_dir = path.parent().unwrap_or_else(|| std::path::Path::new(".")).join("spill");
        let started = JsonlSink::open(&path)
            .map_err(|error| AuditError::Start(format!("{}: {error}", path.display())))
            .and_then(|sink| Auditor::builder().sink(sink).spill_dir(&spill_dir).start());
        started.unwrap_or_else(|error| {
            tracing::error!(%error, "audit log not writable; writing audit events to standard output");
            let spill_dir = std::env::temp_dir().join(format!("hardened-audit-spill-{}", std::process::id()));
            Auditor::builder()
                .sink(StdoutSink)
                .spill_dir(spill_dir)
                .start()
                .unwrap_or_else(|error| panic!("no audit pipeline can start: {error}"))
        })
    })
}

/// The process-wide pipeline if one was installed or started, without starting one.
#[doc(hidden)]
pub fn started() -> Option<&'static Auditor> {
    GLOBAL.get()
}

/// Queues `event` on the process-wide pipeline; see [`Auditor::emit`].
pub fn emit(event: AuditEvent) {
    global().emit(event);
}

/// Queues a call's event on the process-wide pipeline, whose writer completes it.
fn emit_call(event: call::CallEvent) {
    global().emit_call(event);
}

/// Writes out every event emitted so far on the process-wide pipeline (if it was started); see
/// [`Auditor::flush`]. Graceful shutdown calls it after draining in-flight calls.
pub async fn flush() -> Result<(), AuditError> {
    match GLOBAL.get() {
        Some(auditor) => auditor.flush().await,
        None => Ok(()),
    }
}
