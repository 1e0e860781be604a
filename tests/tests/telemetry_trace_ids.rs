//! `telemetry::trace_ids_layer`, what `telemetry::init` installs without an OTLP endpoint: spans get the
//! trace ids, parents and sampling decisions the SDK-backed `otel_layer` gives them, so that audit events,
//! outbound headers and `telemetry::otel_context` see the same trace either way.

use hardened::audit::{AuditEvent, EventType};
use hardened::hardened;
use hardened::telemetry::{self, TelemetryConfig, TraceSampler};
use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags};
use tracing::field::Empty;
use tracing_subscriber::layer::SubscriberExt as _;

#[hardened(kind = "tool", fields(city))]
fn weather(city: &str) -> Result<i32, std::io::Error> {
    tracing::info!(city, "looking up");
    Ok(i32::try_from(city.len()).unwrap_or_default())
}

fn config(sampler: TraceSampler, sample_ratio: f64) -> TelemetryConfig {
    TelemetryConfig { service_name: "trace-ids-test".into(), sampler, sample_ratio, ..TelemetryConfig::default() }
}

/// Runs `body` under a subscriber whose only layer is the ids-only one.
fn with_ids_only<T>(config: &TelemetryConfig, body: impl FnOnce() -> T) -> T {
    let subscriber = tracing_subscriber::registry().with(telemetry::trace_ids_layer(config));
    tracing::subscriber::with_default(subscriber, body)
}

/// Runs `body` under a subscriber with the SDK-backed layer over a provider without an exporter, as
/// `init` installed before.
fn with_sdk<T>(config: &TelemetryConfig, body: impl FnOnce() -> T) -> T {
    let provider = telemetry::tracer_provider(config).expect("no exporter");
    let subscriber = tracing_subscriber::registry().with(telemetry::otel_layer(&provider));
    tracing::subscriber::with_default(subscriber, body)
}

fn remote_parent(flags: &str) -> opentelemetry::Context {
    let mut headers = http::HeaderMap::new();
    let traceparent = format!("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-{flags}");
    headers.insert("traceparent", traceparent.parse().expect("a valid header"));
    hardened::propagation::extract(&headers)
}

fn outbound_traceparent() -> Option<String> {
    let mut headers = http::HeaderMap::new();
    hardened::propagation::inject(&mut headers);
    headers.get("traceparent").map(|value| value.to_str().expect("ASCII").to_owned())
}

/// Where a span's trace came from.
#[derive(Debug, PartialEq)]
enum Origin {
    /// The remote parent's trace.
    Continued,
    /// A new trace.
    Started,
}

/// What a trace looks like from inside: a root span (continuing `parent` if given) and a child, each
/// valid and of one trace; their trace flags and where the trace came from.
#[derive(Debug, PartialEq)]
struct Observed {
    root_flags: TraceFlags,
    child_flags: TraceFlags,
    origin: Origin,
}

fn observe(parent: Option<opentelemetry::Context>) -> Observed {
    let root = tracing::info_span!("root", attempt = 1, result = Empty);
    if let Some(parent) = parent {
        hardened::telemetry::set_parent(&root, parent).expect("the span has not started");
    }
    root.record("result", "done");
    let _entered = root.enter();
    let root_context: SpanContext = hardened::telemetry::otel_context(&root).span().span_context().clone();
    let child = tracing::info_span!("child");
    let child_context: SpanContext = hardened::telemetry::otel_context(&child).span().span_context().clone();
    assert!(root_context.is_valid() && child_context.is_valid());
    assert_eq!(root_context.trace_id(), child_context.trace_id(), "one trace");
    assert_ne!(root_context.span_id(), child_context.span_id(), "a span each");
    let continued = root_context.trace_id().to_string() == "4bf92f3577b34da6a3ce929d0e0e4736";
    Observed {
        root_flags: root_context.trace_flags(),
        child_flags: child_context.trace_flags(),
        origin: if continued { Origin::Continued } else { Origin::Started },
    }
}

#[test]
fn ids_parents_and_sampling_decisions_are_those_of_the_sdk() {
    let samplers = [
        (TraceSampler::AlwaysOn, 1.0),
        (TraceSampler::AlwaysOff, 1.0),
        (TraceSampler::ParentBasedAlwaysOn, 1.0),
        (TraceSampler::ParentBasedAlwaysOff, 1.0),
        (TraceSampler::ParentBasedTraceIdRatio, 1.0),
        (TraceSampler::ParentBasedTraceIdRatio, 0.0),
        (TraceSampler::TraceIdRatio, 0.0),
    ];
    for (sampler, ratio) in samplers {
        let config = config(sampler, ratio);
        for parent in [None, Some("01"), Some("00")] {
            let ids_only = with_ids_only(&config, || observe(parent.map(remote_parent)));
            let sdk = with_sdk(&config, || observe(parent.map(remote_parent)));
            assert_eq!(ids_only, sdk, "{sampler:?} at {ratio}, remote parent flags {parent:?}");
            let expected_origin = if parent.is_some() { Origin::Continued } else { Origin::Started };
            assert_eq!(ids_only.origin, expected_origin);
            match sampler {
                TraceSampler::AlwaysOn => assert_eq!(ids_only.root_flags, TraceFlags::SAMPLED),
                TraceSampler::AlwaysOff => assert_eq!(ids_only.root_flags, TraceFlags::NOT_SAMPLED),
                _ => {}
            }
        }
    }
}

#[test]
fn audit_events_and_outbound_headers_carry_the_trace_without_an_exporter() {
    hardened::audit::set_trace_source(telemetry::current_trace_ids);
    with_ids_only(&config(TraceSampler::ParentBasedTraceIdRatio, 1.0), || {
        assert_eq!(telemetry::current_trace_ids(), None, "no span, no trace");
        assert_eq!(AuditEvent::new(EventType::UserMessage).trace_id, None);

        let span = tracing::info_span!("handling", user = "ada");
        let _entered = span.enter();
        let expected = hardened::telemetry::otel_context(&span).span().span_context().clone();
        let (trace_id, span_id) = (expected.trace_id().to_string(), expected.span_id().to_string());

        let event = AuditEvent::new(EventType::ToolExecution);
        assert_eq!(event.trace_id.as_deref(), Some(trace_id.as_str()));
        assert_eq!(event.span_id.as_deref(), Some(span_id.as_str()));
        assert_eq!(outbound_traceparent(), Some(format!("00-{trace_id}-{span_id}-01")));

        // A `#[hardened]` call inside is a child span of the same trace.
        assert_eq!(weather("Oslo").expect("looks up"), 4);
        let inner = tracing::info_span!("inner");
        let inner_ids = inner.in_scope(telemetry::current_trace_ids).expect("a trace");
        assert_eq!(inner_ids.trace_id_hex(), trace_id);
        assert_ne!(inner_ids.span_id_hex(), span_id);
    });
}

#[test]
fn an_event_inside_a_span_the_trace_filter_leaves_out_carries_the_traced_span_around_it() {
    hardened::audit::set_trace_source(telemetry::current_trace_ids);
    let traced_only = tracing_subscriber::filter::filter_fn(|metadata| metadata.target() != "untraced");
    let layer = tracing_subscriber::Layer::with_filter(
        telemetry::trace_ids_layer(&config(TraceSampler::ParentBasedTraceIdRatio, 1.0)),
        traced_only,
    );
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let traced = tracing::info_span!("traced");
        let _traced = traced.enter();
        let expected = hardened::telemetry::otel_context(&traced).span().span_context().clone();
        let untraced = tracing::info_span!(target: "untraced", "untraced");
        let event = untraced.in_scope(|| AuditEvent::new(EventType::ToolExecution));
        assert_eq!(event.trace_id, Some(expected.trace_id().to_string()));
        assert_eq!(event.span_id, Some(expected.span_id().to_string()));
    });
}

#[test]
fn events_carry_the_trace_under_a_layer_that_makes_no_context_current() {
    hardened::audit::set_trace_source(telemetry::current_trace_ids);
    let config = config(TraceSampler::ParentBasedTraceIdRatio, 1.0);
    let provider = telemetry::tracer_provider(&config).expect("no exporter");
    let tracer = opentelemetry::trace::TracerProvider::tracer(&provider, "hand-built");
    let layer = tracing_opentelemetry::layer().with_tracer(tracer).with_context_activation(false);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let span = tracing::info_span!("handling");
        let _entered = span.enter();
        assert!(!opentelemetry::Context::map_current(TraceContextExt::has_active_span), "nothing made current");
        let expected = hardened::telemetry::otel_context(&span).span().span_context().clone();
        let event = AuditEvent::new(EventType::ToolExecution);
        assert_eq!(event.trace_id, Some(expected.trace_id().to_string()));
        assert_eq!(event.span_id, Some(expected.span_id().to_string()));
    });
}

#[test]
fn a_request_continues_its_callers_trace_and_decision_without_an_exporter() {
    with_ids_only(&config(TraceSampler::ParentBasedTraceIdRatio, 1.0), || {
        for (flags, expected_flags) in [("01", "01"), ("00", "00")] {
            let span = tracing::info_span!("request");
            hardened::telemetry::set_parent(&span, remote_parent(flags)).expect("the span has not started");
            let traceparent = span.in_scope(outbound_traceparent).expect("a traceparent");
            assert!(traceparent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{traceparent}");
            assert!(!traceparent.contains("00f067aa0ba902b7"), "a span of its own: {traceparent}");
            assert!(traceparent.ends_with(&format!("-{expected_flags}")), "{traceparent}");
        }
    });
}

/// What `set_parent` answers for a span not yet used, then after each use of its context.
fn parents_taken() -> Vec<Result<(), String>> {
    let answer = |span: &tracing::Span| {
        hardened::telemetry::set_parent(span, remote_parent("01")).map_err(|error| error.to_string())
    };
    let fresh = tracing::info_span!("fresh");
    let entered = tracing::info_span!("entered");
    entered.in_scope(|| {});
    let read = tracing::info_span!("read");
    let _ = hardened::telemetry::otel_context(&read);
    let with_child = tracing::info_span!("with_child");
    let _child = tracing::info_span!(parent: &with_child, "child");
    let taken = answer(&fresh);
    let continued = hardened::telemetry::otel_context(&fresh).span().span_context().trace_id().to_string();
    assert_eq!(continued, "4bf92f3577b34da6a3ce929d0e0e4736", "the span continues its new parent's trace");
    vec![taken, answer(&entered), answer(&read), answer(&with_child), answer(&tracing::Span::none())]
}

#[test]
fn a_span_takes_a_parent_until_its_context_is_used_under_either_layer() {
    let config = config(TraceSampler::ParentBasedAlwaysOn, 1.0);
    let ids_only = with_ids_only(&config, parents_taken);
    let started = Err("Span has already been started, cannot set parent".to_owned());
    let disabled = Err("Span disabled".to_owned());
    assert_eq!(ids_only, vec![Ok(()), started.clone(), started.clone(), started, disabled]);
    assert_eq!(ids_only, with_sdk(&config, parents_taken), "as under the SDK-backed layer");
}

/// What `set_parent` answers for a span that another layer records but the trace filter leaves out, and
/// the trace id the span's context then has.
fn untraced_parent_taken() -> (Result<(), String>, bool) {
    let untraced = tracing::info_span!(target: "untraced", "untraced");
    let answer = hardened::telemetry::set_parent(&untraced, remote_parent("01")).map_err(|error| error.to_string());
    (answer, hardened::telemetry::otel_context(&untraced).span().span_context().is_valid())
}

#[test]
fn a_span_the_trace_filter_leaves_out_takes_no_parent_and_answers_ok_under_either_layer() {
    let config = config(TraceSampler::ParentBasedAlwaysOn, 1.0);
    let traced_only = || tracing_subscriber::filter::filter_fn(|metadata| metadata.target() != "untraced");
    let recorded = || tracing_subscriber::fmt::layer().with_writer(std::io::sink);
    let ids_only = tracing::subscriber::with_default(
        tracing_subscriber::registry()
            .with(recorded())
            .with(tracing_subscriber::Layer::with_filter(telemetry::trace_ids_layer(&config), traced_only())),
        untraced_parent_taken,
    );
    assert_eq!(ids_only, (Ok(()), false));
    let provider = telemetry::tracer_provider(&config).expect("no exporter");
    let sdk = tracing::subscriber::with_default(
        tracing_subscriber::registry()
            .with(recorded())
            .with(tracing_subscriber::Layer::with_filter(telemetry::otel_layer(&provider), traced_only())),
        untraced_parent_taken,
    );
    assert_eq!(ids_only, sdk, "as under the SDK-backed layer");
}
