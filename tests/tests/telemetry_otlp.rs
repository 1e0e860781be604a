//! Spans exported over real OTLP, gRPC and HTTP/protobuf, by the exporter stack `telemetry::init` builds,
//! to a real receiver (`otelsink`) on loopback.

use std::time::Duration;

use hardened::hardened;
use hardened::telemetry::{self, Protocol, TelemetryConfig};
use hardened_tests::otelsink::{OtelSink, ReceivedSpan};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt as _;

#[derive(Debug)]
struct NotFound;

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not found")
    }
}

#[hardened(kind = "tool", fields(id))]
fn fetch_document(id: u32) -> Result<&'static str, NotFound> {
    if id == 1 { Ok("one") } else { Err(NotFound) }
}

fn config(service: &str, protocol: Protocol, endpoint: String) -> TelemetryConfig {
    TelemetryConfig {
        service_name: service.into(),
        service_version: Some("0.9.1".into()),
        environment: "test".into(),
        instance_id: format!("{service}-instance"),
        otlp_endpoint: Some(endpoint),
        protocol,
        resource_attributes: [("region".to_owned(), "eu-north-1".to_owned())].into(),
        ..TelemetryConfig::default()
    }
}

/// Makes a request span with two tool calls under it, one failing, then flushes.
fn trace_a_request(provider: &SdkTracerProvider) {
    let subscriber = tracing_subscriber::registry().with(telemetry::otel_layer(provider));
    tracing::subscriber::with_default(subscriber, || {
        let _request = tracing::info_span!("request", otel.kind = "server").entered();
        fetch_document(1).ok();
        fetch_document(2).ok();
    });
    provider.force_flush().expect("the receiver takes the spans");
}

fn assert_request_arrived(spans: &[ReceivedSpan], service: &str, transport: &str) {
    let request = spans.iter().find(|span| span.name == "request").expect("the request span arrived");
    let calls: Vec<&ReceivedSpan> = spans.iter().filter(|span| span.name == "fetch_document").collect();
    assert_eq!(calls.len(), 2, "{spans:#?}");

    assert_eq!(request.transport, transport);
    assert_eq!(request.kind, 2, "server");
    assert_eq!(request.parent_span_id, "", "a root span");
    assert_eq!(request.scope, "hardened");
    for span in spans {
        assert_eq!(span.resource_attribute("service.name"), Some(service));
        assert_eq!(span.resource_attribute("service.version"), Some("0.9.1"));
        assert_eq!(span.resource_attribute("service.instance.id"), Some(format!("{service}-instance").as_str()));
        assert_eq!(span.resource_attribute("deployment.environment"), Some("test"));
        assert_eq!(span.resource_attribute("region"), Some("eu-north-1"));
    }
    for call in &calls {
        assert_eq!(call.trace_id, request.trace_id, "one trace");
        assert_eq!(call.parent_span_id, request.span_id, "each call is the request's child");
        assert_eq!(call.kind, 1, "internal");
        assert_eq!(call.attribute("hardened.kind"), Some("tool"));
        assert_eq!(call.attribute("gen_ai.operation.name"), Some("execute_tool"));
        assert_eq!(call.attribute("gen_ai.tool.name"), Some("fetch_document"));
        assert_eq!(call.attribute("code.function"), Some("fetch_document"));
    }
    let failed = calls.iter().find(|call| call.status_code == 2).expect("the failed call has an error status");
    assert_eq!(failed.attribute("error.message"), Some("not found"));
    assert_eq!(calls.iter().filter(|call| call.status_code == 2).count(), 1);
}

fn arrived(sink: &OtelSink, service: &str) -> Vec<ReceivedSpan> {
    let spans = sink.spans_when(Duration::from_secs(10), |spans| {
        spans.iter().filter(|span| span.resource_attribute("service.name") == Some(service)).count() >= 3
    });
    spans.into_iter().filter(|span| span.resource_attribute("service.name") == Some(service)).collect()
}

#[test]
fn spans_arrive_over_grpc() {
    let sink = OtelSink::start();
    let provider = telemetry::tracer_provider(&config("otlp-grpc", Protocol::Grpc, sink.grpc_endpoint()))
        .expect("a valid configuration");
    trace_a_request(&provider);
    assert_request_arrived(&arrived(&sink, "otlp-grpc"), "otlp-grpc", "grpc");
    provider.shutdown().expect("shuts down once");
}

#[test]
fn spans_arrive_over_http_protobuf() {
    let sink = OtelSink::start();
    let provider = telemetry::tracer_provider(&config("otlp-http", Protocol::HttpProtobuf, sink.http_endpoint()))
        .expect("a valid configuration");
    trace_a_request(&provider);
    assert_request_arrived(&arrived(&sink, "otlp-http"), "otlp-http", "http");
    provider.shutdown().expect("shuts down once");
}

/// The gRPC exporter runs on a runtime of its own: built inside a current-thread runtime and flushed
/// from that runtime's only thread, which is blocked meanwhile, it still delivers.
#[tokio::test(flavor = "current_thread")]
async fn grpc_export_does_not_lean_on_the_caller_s_runtime() {
    let sink = OtelSink::start();
    let provider = telemetry::tracer_provider(&config("otlp-grpc-in-tokio", Protocol::Grpc, sink.grpc_endpoint()))
        .expect("a valid configuration");
    trace_a_request(&provider);
    assert_request_arrived(&arrived(&sink, "otlp-grpc-in-tokio"), "otlp-grpc-in-tokio", "grpc");
    provider.shutdown().expect("shuts down once");
}
