//! One audit event, piece by piece: built on the request's thread (in a request's audit scope and span,
//! so that it takes the actor and the trace ids), as the service builds its own events (`build_plain`)
//! and as `#[hardened(audit = action)]` builds one from a derived action (`build_derived`); queued
//! (`emit`); and on the writer's thread sealed into the hash chain (`seal`: canonical JSON, SHA-256,
//! the line), of which `sha256` is the hash of a typical line alone; and appended to the JSONL file
//! (`write`, in batches of 100 as the writer hands them).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use agent_server::Settings;
use criterion::Criterion;
use hardened::Audited;
use hardened::audit::{
    self, AuditContext, AuditEvent, AuditOutcome, Audited as _, Auditor, EventType, JsonlSink, Sink as _,
};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use crate::allocations::{self, PerUnit};
use crate::subscribers::Telemetry;

/// Events the writer hands the sink at once in `write`.
const BATCH: usize = 100;
/// Events emitted per timed burst: what the queue holds.
const BURST: usize = 10_000;

/// A user's message as the agent's `Action` records it: its text as a keyed hash.
#[derive(Debug, Clone, Serialize, Audited)]
enum Action {
    #[audited(event = "UserMessage")]
    UserMessage {
        #[audited(session_id)]
        session: Uuid,
        #[audited(redact = "hash")]
        content: String,
    },
}

/// An authorization decision, as the service records one for each tool call.
fn plain_event(session: &str) -> AuditEvent {
    AuditEvent::new(EventType::AuthorizationCheck)
        .resource("session")
        .session_id(session)
        .detail("action", "message")
        .outcome(AuditOutcome::Success)
}

fn derived_event(action: &Action) -> AuditEvent {
    action.audit_record().into_event(AuditOutcome::Success)
}

/// `make`, inside a request's audit scope and span under the development telemetry.
fn in_request<R>(settings: &Settings, make: impl FnOnce() -> R) -> R {
    tracing::subscriber::with_default(Telemetry::Development.subscriber(settings), || {
        let _request = tracing::info_span!("http.server.request").entered();
        let context = AuditContext::user("developer").ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        audit::sync_scope(context, make)
    })
}

/// Events as a message records them, half plain and half derived, to seal and write.
fn events(settings: &Settings, count: usize) -> Vec<AuditEvent> {
    let session = Uuid::now_v7();
    let action = Action::UserMessage { session, content: "what is 2 + 3 * 4?".to_owned() };
    let session = session.to_string();
    in_request(settings, || {
        (0..count).map(|n| if n % 2 == 0 { plain_event(&session) } else { derived_event(&action) }).collect()
    })
}

pub(crate) fn bench(c: &mut Criterion, settings: &Settings, runtime: &tokio::runtime::Runtime) {
    let mut group = c.benchmark_group("audit_event");
    let session = Uuid::now_v7();
    let action = Action::UserMessage { session, content: "what is 2 + 3 * 4?".to_owned() };
    let session = session.to_string();
    in_request(settings, || {
        group.bench_function("build_plain", |b| b.iter(|| plain_event(black_box(&session))));
        group.bench_function("build_derived", |b| b.iter(|| derived_event(black_box(&action))));
    });

    let directory = tempfile::tempdir().expect("a temporary directory");
    let auditor = Auditor::builder()
        .sink(JsonlSink::open(directory.path().join("emit.jsonl")).expect("a writable log"))
        .spill_dir(directory.path().join("spill"))
        .queue_capacity(BURST + 1)
        .start()
        .expect("the pipeline starts");
    group.bench_function("emit", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            let mut left = usize::try_from(iterations).unwrap_or(usize::MAX);
            while left > 0 {
                let burst = events(settings, left.min(BURST));
                left -= burst.len();
                let started = Instant::now();
                for event in burst {
                    auditor.emit(black_box(event));
                }
                total += started.elapsed();
                runtime.block_on(auditor.flush()).expect("the log is writable");
            }
            total
        });
    });

    group.bench_function("seal", |b| {
        b.iter_custom(|iterations| {
            let events = events(settings, usize::try_from(iterations).unwrap_or(usize::MAX));
            let started = Instant::now();
            let sealed = audit::seal_stream("agent-server/bench", events);
            let elapsed = started.elapsed();
            drop(black_box(sealed));
            elapsed
        });
    });

    let line = audit::seal_stream("agent-server/bench", events(settings, 1)).remove(0).json().to_owned();
    group.bench_function("sha256", |b| b.iter(|| Sha256::digest(black_box(line.as_bytes()))));

    let mut sink = JsonlSink::open(directory.path().join("write.jsonl")).expect("a writable log");
    group.bench_function("write", |b| {
        b.iter_custom(|iterations| {
            let count = usize::try_from(iterations).unwrap_or(usize::MAX);
            let sealed = audit::seal_stream(&format!("agent-server/{}", Uuid::now_v7()), events(settings, count));
            let started = Instant::now();
            for batch in sealed.chunks(BATCH) {
                runtime.block_on(sink.write(batch)).expect("the log is writable");
            }
            started.elapsed()
        });
    });
    group.finish();
}

/// What one event allocates built (`audit_event/build_plain`, `audit_event/build_derived`), sealed
/// (`audit_event/seal`) and written (`audit_event/write`).
pub(crate) fn allocations(
    settings: &Settings,
    runtime: &tokio::runtime::Runtime,
    units: usize,
) -> Vec<(String, PerUnit)> {
    let session = Uuid::now_v7();
    let action = Action::UserMessage { session, content: "what is 2 + 3 * 4?".to_owned() };
    let session = session.to_string();
    let mut kept = Vec::with_capacity(units);
    let (plain, derived) = in_request(settings, || {
        let plain = allocations::per_unit(units, || kept.extend((0..units).map(|_| plain_event(&session))));
        kept.clear();
        let derived = allocations::per_unit(units, || kept.extend((0..units).map(|_| derived_event(&action))));
        (plain, derived)
    });
    let events = events(settings, units);
    let mut sealed = Vec::new();
    let seal = allocations::per_unit(units, || sealed = audit::seal_stream("agent-server/bench", events));
    let directory = tempfile::tempdir().expect("a temporary directory");
    let mut sink = JsonlSink::open(directory.path().join("write.jsonl")).expect("a writable log");
    let write = allocations::per_unit(units, || {
        for batch in sealed.chunks(BATCH) {
            runtime.block_on(sink.write(batch)).expect("the log is writable");
        }
    });
    [("build_plain", plain), ("build_derived", derived), ("seal", seal), ("write", write)]
        .into_iter()
        .map(|(id, allocated)| (format!("audit_event/{id}"), allocated))
        .collect()
}
