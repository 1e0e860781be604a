//! The audit pipeline: batching, the overflow spill when the queue is full, sink outages with backlog
//! and replay, restarts, and its metrics.

use std::sync::Arc;
use std::time::Duration;

use hardened::audit::{
    AuditContext, AuditError, AuditEvent, AuditOutcome, Auditor, BoxFuture, EventType, GENESIS_HASH, MemorySink,
    PendingSink, SealedEvent, Sink, SinkError,
};
use hardened_tests::sample;
use tokio::sync::Semaphore;

fn event(n: usize) -> AuditEvent {
    AuditEvent::new(EventType::ToolExecution).resource("search").detail("n", n)
}

/// The `n` details of the events a sink holds, in the order it holds them.
fn numbers(events: &[SealedEvent]) -> Vec<u64> {
    events.iter().map(|sealed| sealed.event().details["n"].as_u64().expect("a whole number")).collect()
}

/// Checks that `events` are one unbroken chain from its first record.
fn assert_chained(events: &[SealedEvent]) {
    let mut prev_hash = GENESIS_HASH.to_owned();
    for (sequence, sealed) in events.iter().enumerate() {
        let event = sealed.event();
        assert_eq!(event.sequence, sequence as u64, "sequence of record {sequence}");
        assert_eq!(event.prev_hash, prev_hash, "link of record {sequence}");
        prev_hash.clone_from(&event.hash);
    }
}

fn pipeline(directory: &tempfile::TempDir) -> hardened::audit::AuditorBuilder {
    Auditor::builder().spill_dir(directory.path().join("spill")).retries(
        2,
        Duration::from_millis(1),
        Duration::from_millis(2),
    )
}

#[tokio::test]
async fn events_arrive_in_order_in_batches_of_at_most_the_batch_size() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let sink = MemorySink::new();
    let auditor = pipeline(&directory).sink(sink.clone()).batch_size(10).start().expect("the pipeline starts");
    for n in 0..35 {
        auditor.emit(event(n));
    }
    auditor.flush().await.expect("every event is written");

    let events = sink.events();
    assert_eq!(numbers(&events), (0..35).collect::<Vec<_>>());
    assert_chained(&events);
    assert!(sink.writes() >= 4, "35 events in batches of at most 10 take at least 4 writes, not {}", sink.writes());
    assert!(events.iter().all(|sealed| sealed.event().stream == auditor.stream()));
}

/// A batch's time no test waits out: what reaches the sink before it was woken for.
const AN_HOUR: Duration = Duration::from_hours(1);

/// Emits a first event and waits until the writer has taken it: the writer then gathers its batch,
/// asleep until the batch's time is up or a sender wakes it.
async fn start_a_batch(auditor: &Auditor) {
    auditor.emit(event(0));
    let taken = async {
        while auditor.status().queued > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), taken).await.expect("the writer takes the first event");
}

#[tokio::test]
async fn a_batchs_worth_of_events_wakes_the_writer_before_the_batchs_time_is_up() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let sink = MemorySink::new();
    let auditor = pipeline(&directory)
        .sink(sink.clone())
        .batch_size(10)
        .batch_interval(AN_HOUR)
        .start()
        .expect("the pipeline starts");
    start_a_batch(&auditor).await;
    // A batch's worth queued behind the first event wakes the writer, which writes a batch of ten.
    for n in 1..=10 {
        auditor.emit(event(n));
    }
    let written = async {
        while sink.events().len() < 10 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), written)
        .await
        .expect("a batch's worth is written without waiting for the batch's hour");
    assert_eq!(numbers(&sink.events()), (0..10).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_flush_is_answered_without_waiting_for_the_batchs_time() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let sink = MemorySink::new();
    let auditor = pipeline(&directory).sink(sink.clone()).batch_interval(AN_HOUR).start().expect("the pipeline starts");
    start_a_batch(&auditor).await;
    auditor.emit(event(1));
    tokio::time::timeout(Duration::from_secs(30), auditor.flush())
        .await
        .expect("the flush wakes the writer")
        .expect("every event is written");
    assert_eq!(numbers(&sink.events()), vec![0, 1]);
    auditor.emit(event(2));
    tokio::time::timeout(Duration::from_secs(30), auditor.shutdown())
        .await
        .expect("so does a shutdown")
        .expect("the pipeline stops");
    assert_eq!(numbers(&sink.events()), vec![0, 1, 2]);
}

#[tokio::test]
async fn a_sink_outage_keeps_events_in_the_spill_file_and_replays_them_once_on_recovery() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let sink = MemorySink::new();
    let auditor = pipeline(&directory).sink(sink.clone()).batch_size(16).start().expect("the pipeline starts");
    for n in 0..10 {
        auditor.emit(event(n));
    }
    auditor.flush().await.expect("every event is written");

    sink.set_failing(true);
    for n in 10..110 {
        auditor.emit(event(n));
    }
    let outage = auditor.flush().await;
    assert_eq!(outage, Err(AuditError::Pending(vec![PendingSink { sink: "memory".to_owned(), events: 100 }])));
    let backlog = directory.path().join("spill").join("memory.backlog.jsonl");
    assert_eq!(std::fs::read_to_string(&backlog).expect("the file is readable").lines().count(), 100);
    let spilled = sample("hardened_audit_spilled_events", &[("sink", "memory")]).unwrap_or_default();
    assert!(spilled >= 100, "spilled gauge {spilled}");

    sink.set_failing(false);
    for n in 110..120 {
        auditor.emit(event(n));
    }
    auditor.flush().await.expect("every event is written");
    let events = sink.events();
    assert_eq!(numbers(&events), (0..120).collect::<Vec<_>>(), "every event once, in order");
    assert_chained(&events);
    assert!(!backlog.exists(), "the replayed spill file is removed");
}

/// A sink that holds every write until the test lets it through.
#[derive(Clone)]
struct GatedSink {
    gate: Arc<Semaphore>,
    inner: MemorySink,
}

impl Sink for GatedSink {
    fn name(&self) -> &'static str {
        "gated"
    }

    fn write<'a>(&'a mut self, events: &'a [SealedEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            self.gate.acquire().await.expect("the gate stays open").forget();
            self.inner.write(events).await
        })
    }
}

#[tokio::test]
async fn a_full_queue_spills_to_the_overflow_file_and_loses_nothing() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let gate = Arc::new(Semaphore::new(0));
    let sink = GatedSink { gate: Arc::clone(&gate), inner: MemorySink::new() };
    let auditor =
        pipeline(&directory).sink(sink.clone()).queue_capacity(8).batch_size(4).start().expect("the pipeline starts");

    // The writer takes the first batch and waits at the gate; the queue fills behind it, and the rest
    // goes to the overflow file.
    for n in 0..200 {
        auditor.emit(event(n));
    }
    let overflow = directory.path().join("spill").join("overflow.jsonl");
    let overflowed = std::fs::read_to_string(&overflow).expect("the file is readable").lines().count();
    assert!(overflowed >= 200 - 8 - 4, "only the queue and one batch fit: {overflowed} overflowed");

    gate.add_permits(1_000);
    auditor.flush().await.expect("every event is written");
    let mut seen = numbers(&sink.inner.events());
    assert_chained(&sink.inner.events());
    seen.sort_unstable();
    assert_eq!(seen, (0..200).collect::<Vec<_>>(), "every event exactly once");
    assert!(!overflow.exists());
}

#[tokio::test]
async fn a_new_pipeline_writes_out_what_a_stopped_one_left_in_its_spill_directory() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let first = MemorySink::new();
    first.set_failing(true);
    let auditor = pipeline(&directory).sink(first.clone()).start().expect("the pipeline starts");
    for n in 0..5 {
        auditor.emit(event(n));
    }
    assert!(matches!(auditor.shutdown().await, Err(AuditError::Pending(_))));
    // Emitted after the writer stopped: kept in the overflow file.
    for n in 5..8 {
        auditor.emit(event(n));
    }
    assert_eq!(auditor.flush().await, Err(AuditError::Stopped));
    drop(auditor);

    let second = MemorySink::new();
    let auditor = pipeline(&directory).sink(second.clone()).start().expect("the pipeline starts");
    auditor.flush().await.expect("every event is written");
    let events = second.events();
    let mut seen = numbers(&events);
    seen.sort_unstable();
    assert_eq!(seen, (0..8).collect::<Vec<_>>());
    assert!(first.events().is_empty());
}

#[tokio::test]
async fn two_pipelines_cannot_share_a_spill_directory() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let _first = pipeline(&directory).sink(MemorySink::new()).start().expect("the pipeline starts");
    let second = pipeline(&directory).sink(MemorySink::new()).start();
    let Err(AuditError::Start(reason)) = second else { panic!("a second pipeline started on the same directory") };
    assert!(reason.contains("in use by another audit pipeline"), "{reason}");
}

#[tokio::test]
async fn a_pipeline_needs_a_sink_and_distinct_sink_names() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let none = pipeline(&directory).start();
    assert!(matches!(none, Err(AuditError::Start(reason)) if reason.contains("no sink")));
    let twice = pipeline(&directory).sink(MemorySink::new()).sink(MemorySink::new()).start();
    assert!(matches!(twice, Err(AuditError::Start(reason)) if reason.contains("two sinks are named memory")));
}

#[tokio::test]
async fn every_sink_gets_every_event_and_one_down_does_not_hold_up_the_other() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let healthy = MemorySink::new();
    let down = Named { name: "down", inner: MemorySink::new() };
    down.inner.set_failing(true);
    let auditor = pipeline(&directory).sink(healthy.clone()).sink(down.clone()).start().expect("the pipeline starts");
    for n in 0..20 {
        auditor.emit(event(n));
    }
    let result = auditor.flush().await;
    assert_eq!(result, Err(AuditError::Pending(vec![PendingSink { sink: "down".to_owned(), events: 20 }])));
    assert_eq!(numbers(&healthy.events()), (0..20).collect::<Vec<_>>());
    down.inner.set_failing(false);
    auditor.flush().await.expect("every event is written");
    assert_eq!(down.inner.events(), healthy.events(), "both hold the same sealed records");
}

/// A [`MemorySink`] under another name.
#[derive(Clone)]
struct Named {
    name: &'static str,
    inner: MemorySink,
}

impl Sink for Named {
    fn name(&self) -> &str {
        self.name
    }

    fn write<'a>(&'a mut self, events: &'a [SealedEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        self.inner.write(events)
    }
}

#[tokio::test]
async fn events_take_their_actor_from_the_scope_and_records_override_it() {
    let context = AuditContext::user("ada").session("s-1").ip("203.0.113.9".parse().expect("a valid address"));
    let (inside, overridden) = hardened::audit::scope(context, async {
        let inside = AuditEvent::new(EventType::UserMessage);
        let overridden = AuditEvent::new(EventType::UserMessage).user_id("grace");
        (inside, overridden)
    })
    .await;
    assert_eq!(inside.user_id.as_deref(), Some("ada"));
    assert_eq!(inside.session_id.as_deref(), Some("s-1"));
    assert_eq!(inside.ip_address, Some("203.0.113.9".parse().expect("a valid address")));
    assert_eq!(overridden.user_id.as_deref(), Some("grace"));
    let outside = AuditEvent::new(EventType::UserMessage);
    assert_eq!(outside.user_id, None);
}

#[test]
fn events_serialize_with_rfc3339_microsecond_timestamps_and_named_types() {
    let event = AuditEvent::new(EventType::named("PaymentRefund")).outcome(AuditOutcome::Denied);
    let json = serde_json::to_value(&event).expect("an event serializes");
    assert_eq!(json["event_type"], "PaymentRefund");
    assert_eq!(json["outcome"], "Denied");
    let timestamp = json["timestamp"].as_str().expect("a string");
    assert_eq!(timestamp.len(), "2026-11-27T09:00:00.123456Z".len(), "{timestamp}");
    assert!(timestamp.ends_with('Z'));
    let back: AuditEvent = serde_json::from_value(json).expect("an event deserializes");
    assert_eq!(back, event);
    assert_eq!(EventType::named("ToolExecution"), EventType::ToolExecution);
    assert_eq!(EventType::named("PaymentRefund"), EventType::Custom("PaymentRefund".into()));
}

#[test]
fn event_ids_are_ordered_by_creation() {
    let ids: Vec<_> = (0..1000).map(|_| AuditEvent::new(EventType::Error).id).collect();
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
    assert!(ids.iter().all(|id| id.get_version_num() == 7));
}

#[tokio::test]
async fn the_pipeline_reports_its_metrics() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let sink = Named { name: "metered", inner: MemorySink::new() };
    let auditor = pipeline(&directory).sink(sink.clone()).start().expect("the pipeline starts");
    // Every series is there at zero before anything happens, so that a first failure is a visible increase.
    for result in ["written", "failed", "spilled", "replayed"] {
        assert_eq!(
            sample("hardened_audit_events_total", &[("sink", "metered"), ("result", result)]),
            Some(0),
            "{result}"
        );
    }
    // Other tests of this binary may overflow their queues: the series is there, whatever its value.
    assert!(sample("hardened_audit_events_total", &[("sink", "queue"), ("result", "spilled")]).is_some());
    assert_eq!(sample("hardened_audit_spilled_events", &[("sink", "metered")]), Some(0));
    for n in 0..7 {
        auditor.emit(event(n));
    }
    auditor.flush().await.expect("every event is written");
    assert_eq!(sample("hardened_audit_events_total", &[("sink", "metered"), ("result", "written")]), Some(7));
    let rendered = hardened::metrics::render();
    assert!(rendered.contains("hardened_audit_queue_depth "), "{rendered}");
    assert!(rendered.contains(r#"hardened_audit_batch_duration_seconds_count{sink="metered"}"#));
}

#[tokio::test]
async fn recorded_events_are_counted_by_type_and_outcome_once_each() {
    fn recorded(event_type: &str, outcome: &str) -> Option<u64> {
        sample("hardened_audit_recorded_total", &[("event_type", event_type), ("outcome", outcome)])
    }
    let directory = tempfile::tempdir().expect("a temporary directory");
    // Two sinks: an event written to both is still recorded once.
    let auditor = pipeline(&directory)
        .sink(Named { name: "recorded-a", inner: MemorySink::new() })
        .sink(Named { name: "recorded-b", inner: MemorySink::new() })
        .start()
        .expect("the pipeline starts");
    // Every built-in type and outcome is there before any such event, so that a first one is an increase.
    for event_type in &EventType::BUILT_IN {
        for outcome in AuditOutcome::ALL {
            assert!(recorded(event_type.as_str(), outcome.as_str()).is_some(), "{event_type:?} {outcome:?}");
        }
    }
    // No other test of this binary records configuration changes or this custom type.
    let before = recorded("ConfigurationChange", "Denied").expect("shown at zero");
    for _ in 0..3 {
        auditor.emit(AuditEvent::new(EventType::ConfigurationChange).outcome(AuditOutcome::Denied));
    }
    for _ in 0..2 {
        auditor.emit(AuditEvent::new(EventType::named("QuotaRaised")).outcome(AuditOutcome::Success));
    }
    auditor.emit(AuditEvent::new(EventType::ConfigurationChange));
    auditor.flush().await.expect("every event is written");
    assert_eq!(recorded("ConfigurationChange", "Denied"), Some(before + 3));
    assert_eq!(recorded("ConfigurationChange", "Success"), Some(1));
    assert_eq!(recorded("QuotaRaised", "Success"), Some(2));
    assert_eq!(recorded("QuotaRaised", "Denied"), None, "a custom type's series appear with its first event");
}

#[test]
fn events_name_the_trace_they_were_recorded_in() {
    // A source answers from whatever tracing integration the service has; this one from a fixed span.
    static CURRENT: std::sync::Mutex<Option<hardened::audit::TraceIds>> =
        std::sync::Mutex::new(Some(hardened::audit::TraceIds {
            trace_id: 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736_u128.to_be_bytes(),
            span_id: 0x00f0_67aa_0ba9_02b7_u64.to_be_bytes(),
        }));
    fn current_trace() -> Option<hardened::audit::TraceIds> {
        *CURRENT.lock().expect("not poisoned")
    }
    assert!(hardened::audit::set_trace_source(current_trace), "the first source registered");
    let event = AuditEvent::new(EventType::ToolExecution);
    assert_eq!(event.trace_id.as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
    assert_eq!(event.span_id.as_deref(), Some("00f067aa0ba902b7"));
    *CURRENT.lock().expect("not poisoned") = None;
    let outside = AuditEvent::new(EventType::ToolExecution);
    assert_eq!((outside.trace_id, outside.span_id), (None, None), "no trace, no ids");
}
