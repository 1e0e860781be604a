//! The OpenTelemetry spans of `#[hardened]` calls, checked in the SDK's in-memory exporter behind the
//! same sampler, resource and tracing layer `telemetry::init` installs.

use std::fmt;

use hardened::audit::{AuditEvent, EventType};
use hardened::hardened;
use hardened::telemetry::{self, TelemetryConfig, TraceSampler};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt as _, Tracer as _, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing_subscriber::layer::SubscriberExt as _;

#[derive(Debug)]
struct LookupError;

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no such city")
    }
}

#[hardened(kind = "tool", fields(city))]
fn weather(city: &str) -> Result<i32, LookupError> {
    if city == "Oslo" { Ok(4) } else { Err(LookupError) }
}

#[hardened(kind = "reducer")]
fn reduce_weather(total: i32, reading: i32) -> i32 {
    total + reading
}

#[hardened(kind = "tool", name = "maps.route")]
async fn route_tool(from: &str) -> Result<usize, LookupError> {
    Ok(from.len())
}

fn config(sampler: TraceSampler, sample_ratio: f64) -> TelemetryConfig {
    TelemetryConfig {
        service_name: "memory-test".into(),
        service_version: Some("1.2.3".into()),
        environment: "test".into(),
        instance_id: "instance-7".into(),
        sampler,
        sample_ratio,
        resource_attributes: [("team".to_owned(), "payments".to_owned())].into(),
        ..TelemetryConfig::default()
    }
}

fn in_memory(config: &TelemetryConfig) -> (SdkTracerProvider, InMemorySpanExporter) {
    let exporter = InMemorySpanExporter::default();
    let provider = telemetry::tracer_provider_builder(config).with_simple_exporter(exporter.clone()).build();
    (provider, exporter)
}

/// Runs `body` under a subscriber with only the OpenTelemetry layer over `provider`.
fn traced<T>(provider: &SdkTracerProvider, body: impl FnOnce() -> T) -> T {
    let subscriber = tracing_subscriber::registry().with(telemetry::otel_layer(provider));
    tracing::subscriber::with_default(subscriber, body)
}

fn finished(exporter: &InMemorySpanExporter) -> Vec<SpanData> {
    exporter.get_finished_spans().expect("the in-memory exporter is readable")
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    let mut matching = spans.iter().filter(|span| span.name == name);
    let span = matching.next().unwrap_or_else(|| panic!("no span named {name} among {spans:#?}"));
    assert!(matching.next().is_none(), "more than one span named {name}");
    span
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes.iter().find(|pair| pair.key.as_str() == key).map(|pair| pair.value.to_string())
}

#[test]
fn hardened_spans_carry_their_attributes_parent_and_error_status() {
    let (provider, exporter) = in_memory(&config(TraceSampler::ParentBasedTraceIdRatio, 1.0));
    traced(&provider, || {
        let _request = tracing::info_span!("request").entered();
        weather("Oslo").ok();
        weather("Atlantis").ok();
    });

    let spans = finished(&exporter);
    let request = named(&spans, "request");
    let calls: Vec<&SpanData> = spans.iter().filter(|span| span.name == "weather").collect();
    assert_eq!(calls.len(), 2);
    for call in &calls {
        assert_eq!(call.span_context.trace_id(), request.span_context.trace_id(), "one trace");
        assert_eq!(call.parent_span_id, request.span_context.span_id(), "the call is the request's child");
        assert_eq!(call.span_kind, SpanKind::Internal);
        assert_eq!(call.instrumentation_scope.name(), "hardened");
        assert_eq!(attribute(call, "code.function").as_deref(), Some("weather"));
        assert_eq!(attribute(call, "code.namespace").as_deref(), Some("telemetry_memory"));
        assert_eq!(attribute(call, "hardened.kind").as_deref(), Some("tool"));
    }
    let (ok, failed) = (calls[0], calls[1]);
    assert_eq!(attribute(ok, "city").as_deref(), Some("Oslo"));
    assert_eq!(ok.status, Status::Unset);
    assert!(matches!(failed.status, Status::Error { .. }), "{:?}", failed.status);
    assert_eq!(attribute(failed, "error.message").as_deref(), Some("no such city"));
}

#[tokio::test(flavor = "current_thread")]
async fn tool_spans_carry_gen_ai_attributes_and_other_kinds_do_not() {
    let (provider, exporter) = in_memory(&config(TraceSampler::AlwaysOn, 1.0));
    let subscriber = tracing_subscriber::registry().with(telemetry::otel_layer(&provider));
    let _default = tracing::subscriber::set_default(subscriber);

    weather("Oslo").ok();
    route_tool("home").await.ok();
    reduce_weather(1, 2);

    let spans = finished(&exporter);
    let weather = named(&spans, "weather");
    assert_eq!(attribute(weather, "gen_ai.operation.name").as_deref(), Some("execute_tool"));
    assert_eq!(attribute(weather, "gen_ai.tool.name").as_deref(), Some("weather"));
    let route = named(&spans, "maps.route");
    assert_eq!(attribute(route, "gen_ai.operation.name").as_deref(), Some("execute_tool"));
    assert_eq!(attribute(route, "gen_ai.tool.name").as_deref(), Some("maps.route"));
    let reducer = named(&spans, "reduce_weather");
    assert!(
        !reducer.attributes.iter().any(|pair| pair.key.as_str().starts_with("gen_ai.")),
        "a reducer is no GenAI tool: {:?}",
        reducer.attributes
    );
}

#[test]
fn the_resource_names_the_service_its_version_instance_and_environment() {
    let resource = telemetry::resource(&config(TraceSampler::AlwaysOn, 1.0));
    let get =
        |key: &'static str| resource.get(&opentelemetry::Key::from_static_str(key)).map(|value| value.to_string());
    assert_eq!(get("service.name").as_deref(), Some("memory-test"));
    assert_eq!(get("service.version").as_deref(), Some("1.2.3"));
    assert_eq!(get("service.instance.id").as_deref(), Some("instance-7"));
    assert_eq!(get("deployment.environment").as_deref(), Some("test"));
    assert_eq!(get("team").as_deref(), Some("payments"));
    assert_eq!(get("telemetry.sdk.language").as_deref(), Some("rust"));
}

#[test]
fn the_trace_id_ratio_holds_over_many_root_traces() {
    const TRACES: u32 = 10_000;
    let (provider, _) = in_memory(&config(TraceSampler::ParentBasedTraceIdRatio, 0.25));
    let tracer = provider.tracer("ratio");
    let sampled = (0..TRACES)
        .filter(|_| {
            let span = tracer.start("root");
            opentelemetry::trace::Span::span_context(&span).is_sampled()
        })
        .count();
    // Binomial(10 000, 0.25): mean 2 500, standard deviation 43.3. ±300 is ±6.9 deviations, which a
    // correct sampler leaves with a probability below 1e-11.
    assert!((2_200..=2_800).contains(&sampled), "{sampled} of {TRACES} sampled at ratio 0.25");
}

fn remote_parent(flags: &str) -> opentelemetry::Context {
    let mut headers = http::HeaderMap::new();
    let traceparent = format!("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-{flags}");
    headers.insert("traceparent", traceparent.parse().expect("a valid header"));
    hardened::propagation::extract(&headers)
}

#[test]
fn a_sampled_parent_makes_a_sampled_child_whatever_the_ratio() {
    let (provider, exporter) = in_memory(&config(TraceSampler::ParentBasedTraceIdRatio, 0.0));
    traced(&provider, || {
        let continued = tracing::info_span!("continued");
        hardened::telemetry::set_parent(&continued, remote_parent("01")).expect("the span has not started");
        continued.in_scope(|| weather("Oslo").ok());
        tracing::info_span!("new_root").in_scope(|| weather("Oslo").ok());
    });

    let spans = finished(&exporter);
    let names: Vec<&str> = spans.iter().map(|span| span.name.as_ref()).collect();
    assert_eq!(names, ["weather", "continued"], "only the continued trace is kept at ratio 0");
    let continued = named(&spans, "continued");
    assert_eq!(continued.span_context.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(continued.parent_span_id.to_string(), "00f067aa0ba902b7");
    assert!(continued.parent_span_is_remote);
    assert_eq!(named(&spans, "weather").parent_span_id, continued.span_context.span_id());
}

#[test]
fn an_unsampled_parent_makes_an_unsampled_child_whatever_the_ratio() {
    let (provider, exporter) = in_memory(&config(TraceSampler::ParentBasedTraceIdRatio, 1.0));
    traced(&provider, || {
        let continued = tracing::info_span!("continued");
        hardened::telemetry::set_parent(&continued, remote_parent("00")).expect("the span has not started");
        continued.in_scope(|| weather("Oslo").ok());
    });
    assert!(finished(&exporter).is_empty(), "the caller decided not to sample");
}

#[test]
fn audit_events_and_outbound_headers_carry_the_current_span() {
    let (provider, _) = in_memory(&config(TraceSampler::AlwaysOn, 1.0));
    hardened::audit::set_trace_source(telemetry::current_trace_ids);
    traced(&provider, || {
        assert_eq!(telemetry::current_trace_ids(), None, "no span, no trace");
        let span = tracing::info_span!("handling");
        let _entered = span.enter();
        let context = hardened::telemetry::otel_context(&span);
        let expected = context.span().span_context().clone();

        let event = AuditEvent::new(EventType::ToolExecution);
        assert_eq!(event.trace_id, Some(expected.trace_id().to_string()));
        assert_eq!(event.span_id, Some(expected.span_id().to_string()));

        let mut headers = http::HeaderMap::new();
        hardened::propagation::inject(&mut headers);
        assert_eq!(headers["traceparent"], format!("00-{}-{}-01", expected.trace_id(), expected.span_id()).as_str());
    });
}
