//! A caller outside the system sends `traceparent` with the sampled flag, to force its requests into the
//! recorded traces and to choose the trace id that lands in audit records. Over a real loopback server,
//! under the parent-based ratio sampler: with `trust_incoming_trace(false)` the request starts a new
//! trace, sampled as any new trace, with a link to the caller's; by default the caller's is continued.
//!
//! Each test runs the server on its test thread (a current-thread runtime) under a subscriber of its own,
//! so that each has its own sampler.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use hardened::audit::{AuditEvent, EventType};
use hardened::http::{Server, ServerLimits, ServerTraceLayer};
use hardened::telemetry::{self, TelemetryConfig, TraceSampler};
use opentelemetry::trace::{SpanId, TraceContextExt as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tracing_subscriber::layer::SubscriberExt as _;

const CALLER_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const CALLER_SPAN: &str = "b7ad6b7169203331";

fn caller_traceparent() -> String {
    format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01")
}

/// A provider with the default sampler (parent-based, by trace-id ratio) keeping `ratio` of new traces,
/// exporting to memory, and installed as the test thread's subscriber.
fn traced(ratio: f64) -> (InMemorySpanExporter, SdkTracerProvider, tracing::subscriber::DefaultGuard) {
    hardened::audit::set_trace_source(telemetry::current_trace_ids);
    let config = TelemetryConfig {
        sampler: TraceSampler::ParentBasedTraceIdRatio,
        sample_ratio: ratio,
        ..TelemetryConfig::default()
    };
    let exporter = InMemorySpanExporter::default();
    let provider = telemetry::tracer_provider_builder(&config).with_simple_exporter(exporter.clone()).build();
    let subscriber = tracing_subscriber::registry().with(telemetry::otel_layer(&provider));
    (exporter, provider, tracing::subscriber::set_default(subscriber))
}

/// What the handler sees of its trace: the trace id an audit event made there records, and whether the
/// trace is sampled.
async fn trace_seen() -> String {
    let trace_id = AuditEvent::new(EventType::named("TraceProbe")).trace_id.unwrap_or_default();
    let sampled = hardened::telemetry::otel_context(&tracing::Span::current()).span().span_context().is_sampled();
    format!("{trace_id} {sampled}")
}

async fn request_with_caller_trace(layer: ServerTraceLayer) -> (String, bool) {
    let app = Router::new().route("/trace", get(trace_seen)).layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let address = listener.local_addr().expect("a bound address");
    tokio::spawn(Server::new(app).limits(ServerLimits::default()).run(listener));
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("a client");
    let response = client
        .get(format!("http://{address}/trace"))
        .header("traceparent", caller_traceparent())
        .send()
        .await
        .expect("an answer");
    assert!(response.status().is_success());
    let text = response.text().await.expect("a body");
    let (trace_id, sampled) = text.split_once(' ').expect("`trace sampled`");
    (trace_id.to_owned(), sampled == "true")
}

#[tokio::test(flavor = "current_thread")]
async fn an_untrusted_callers_sampled_traceparent_starts_a_new_trace_sampled_by_ratio() {
    let (exporter, provider, _subscriber) = traced(0.0);

    let (trace_id, sampled) = request_with_caller_trace(ServerTraceLayer::new().trust_incoming_trace(false)).await;

    assert_eq!(trace_id.len(), 32, "a trace id lands in the audit record: {trace_id:?}");
    assert_ne!(trace_id, CALLER_TRACE, "the caller does not choose the trace id of audit records");
    assert!(!sampled, "a ratio of 0 keeps no new trace, whatever the caller's flag says");
    provider.force_flush().expect("flushed");
    assert!(exporter.get_finished_spans().expect("readable").is_empty(), "nothing recorded");
}

#[tokio::test(flavor = "current_thread")]
async fn an_untrusted_callers_context_becomes_a_link_of_a_new_root_span() {
    let (exporter, provider, _subscriber) = traced(1.0);

    let (trace_id, sampled) = request_with_caller_trace(ServerTraceLayer::new().trust_incoming_trace(false)).await;
    assert_ne!(trace_id, CALLER_TRACE);
    assert!(sampled, "a ratio of 1 keeps every new trace");

    provider.force_flush().expect("flushed");
    let spans = exporter.get_finished_spans().expect("readable");
    let span = spans.iter().find(|span| span.name == "GET /trace").expect("the server span");
    assert_eq!(span.span_context.trace_id().to_string(), trace_id);
    assert_eq!(span.parent_span_id, SpanId::INVALID, "a root span");
    let [link] = span.links.links.as_slice() else { panic!("one link, found {:?}", span.links) };
    assert_eq!(link.span_context.trace_id().to_string(), CALLER_TRACE);
    assert_eq!(link.span_context.span_id().to_string(), CALLER_SPAN);
}

#[tokio::test(flavor = "current_thread")]
async fn a_trusted_callers_trace_is_continued_with_its_sampling_decision() {
    let (_exporter, _provider, _subscriber) = traced(0.0);

    let (trace_id, sampled) = request_with_caller_trace(ServerTraceLayer::new()).await;

    assert_eq!(trace_id, CALLER_TRACE, "continued, as between services of one system");
    assert!(sampled, "the caller's decision, under the parent-based sampler");
}
