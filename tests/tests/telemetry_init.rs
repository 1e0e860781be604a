//! `telemetry::init` as an application calls it: one global subscriber per process, so this binary holds
//! a single test that walks through startup, traced work and graceful shutdown against a real receiver.

use std::time::Duration;

use hardened::audit::{AuditEvent, EventType};
use hardened::hardened;
use hardened::telemetry::{self, Protocol, TelemetryConfig, TelemetryError};
use hardened_tests::otelsink::OtelSink;

#[hardened(kind = "tool")]
async fn summarise(text: &str) -> Result<usize, std::io::Error> {
    tokio::task::yield_now().await;
    Ok(text.split_whitespace().count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_exports_links_audit_events_and_flushes_at_shutdown() {
    let sink = OtelSink::start();
    let config = TelemetryConfig {
        service_name: "init-test".into(),
        otlp_endpoint: Some(sink.grpc_endpoint()),
        protocol: Protocol::Grpc,
        // Only the graceful shutdown exports, so arrival proves it flushed.
        batch_delay: Duration::from_hours(1),
        ..TelemetryConfig::default()
    };
    let guard = telemetry::init(&config).expect("the first initialisation");
    assert!(matches!(telemetry::init(&config), Err(TelemetryError::AlreadyInstalled)));
    assert_eq!(hardened_tests::sample("hardened_telemetry_spans_dropped_total", &[]), Some(0));

    let span = tracing::info_span!("job");
    let (event, traceparent) = {
        let _entered = span.enter();
        let mut headers = http::HeaderMap::new();
        hardened::propagation::inject(&mut headers);
        (AuditEvent::new(EventType::ToolExecution), headers["traceparent"].to_str().expect("ascii").to_owned())
    };
    tracing::Instrument::instrument(async { summarise("three short words").await.ok() }, span.clone()).await;
    drop(span);

    let trace_id = event.trace_id.clone().expect("audit events carry the current trace");
    let span_id = event.span_id.clone().expect("and span");
    assert_eq!(traceparent, format!("00-{trace_id}-{span_id}-01"));

    let reports = hardened::shutdown::run_handlers().await;
    let telemetry = reports.iter().find(|report| report.name == "telemetry").expect("init registered a handler");
    assert!(telemetry.outcome.is_done(), "{telemetry}");

    let spans = sink.spans_when(Duration::from_secs(10), |spans| spans.len() >= 2);
    let job = spans.iter().find(|span| span.name == "job").expect("the job span arrived");
    let tool = spans.iter().find(|span| span.name == "summarise").expect("the tool span arrived");
    assert_eq!((job.trace_id.as_str(), job.span_id.as_str()), (trace_id.as_str(), span_id.as_str()));
    assert_eq!(tool.parent_span_id, job.span_id);
    assert_eq!(job.resource_attribute("service.name"), Some("init-test"));

    assert!(guard.provider().is_none(), "the shutdown handler shut the provider down");
    guard.shutdown().expect("a second shutdown does nothing");
    drop(guard);
}
