//! Metrics exported over real OTLP, gRPC and HTTP/protobuf, by `MetricsExporter`, to a real receiver
//! (`otelsink`) on loopback: the counts it receives are the calls made.

use std::time::Duration;

use hardened::hardened;
use hardened::telemetry::{MetricsExporter, MetricsExporters, MetricsTemporality, Protocol, TelemetryConfig};
use hardened_tests::otelsink::{OtelSink, ReceivedPoint};

#[derive(Debug)]
struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("refused")
    }
}

#[hardened(buckets = [0.001, 1.0])]
fn count_over_grpc(ok: bool) -> Result<(), Refused> {
    if ok { Ok(()) } else { Err(Refused) }
}

#[hardened]
fn count_over_http() {}

#[hardened]
fn count_in_deltas() {}

#[hardened]
fn traced_over_otlp() {}

fn config(protocol: Protocol, endpoint: String, temporality: MetricsTemporality) -> TelemetryConfig {
    TelemetryConfig {
        service_name: "metrics-test".into(),
        otlp_endpoint: Some(endpoint),
        protocol,
        metrics_exporters: MetricsExporters::BOTH,
        metrics_temporality: temporality,
        // Exports happen when the test asks, not on their own.
        metric_export_interval: Duration::from_hours(1),
        metric_export_timeout: Duration::from_secs(10),
        ..TelemetryConfig::default()
    }
}

/// The points of `name` for `function` received over `transport`.
fn points_of<'a>(points: &'a [ReceivedPoint], transport: &str, name: &str, function: &str) -> Vec<&'a ReceivedPoint> {
    points
        .iter()
        .filter(|point| {
            point.transport == transport && point.name == name && point.attribute("function") == Some(function)
        })
        .collect()
}

fn call_count(points: &[ReceivedPoint], transport: &str, function: &str, outcome: &str) -> Option<f64> {
    points_of(points, transport, "hardened.calls", function)
        .into_iter()
        .rfind(|point| point.attribute("outcome") == Some(outcome))
        .and_then(ReceivedPoint::value)
}

#[test]
fn grpc_export_carries_every_call_and_its_duration() {
    let sink = OtelSink::start();
    let exporter =
        MetricsExporter::start(&config(Protocol::Grpc, sink.grpc_endpoint(), MetricsTemporality::Cumulative))
            .expect("valid configuration")
            .expect("OTLP metrics are on");
    for _ in 0..7 {
        count_over_grpc(true).expect("ok");
    }
    for _ in 0..2 {
        count_over_grpc(false).expect_err("refused");
    }
    exporter.export_now().expect("the receiver takes the metrics");

    let points = sink.points_when(Duration::from_secs(10), |points| {
        // Families arrive in the order of their names, all in one request: wait for the last one looked at.
        call_count(points, "grpc", "count_over_grpc", "error").is_some()
            && !points_of(points, "grpc", "hardened.call.duration", "count_over_grpc").is_empty()
            && points.iter().any(|point| point.name == "hardened.calls.active")
            && (cfg!(not(target_os = "linux")) || points.iter().any(|point| point.name == "process.cpu.time"))
    });
    assert_eq!(call_count(&points, "grpc", "count_over_grpc", "ok"), Some(7.0), "{points:#?}");
    assert_eq!(call_count(&points, "grpc", "count_over_grpc", "error"), Some(2.0));
    let calls = points_of(&points, "grpc", "hardened.calls", "count_over_grpc")[0];
    assert_eq!((calls.kind.as_str(), calls.unit.as_str(), calls.temporality), ("sum", "{call}", 2));
    assert_eq!(calls.line["monotonic"], true);
    assert_eq!(calls.resource.get("service.name").and_then(|name| name.as_str()), Some("metrics-test"));

    let duration = points_of(&points, "grpc", "hardened.call.duration", "count_over_grpc")[0];
    assert_eq!((duration.kind.as_str(), duration.unit.as_str()), ("histogram", "s"));
    assert_eq!(duration.count(), Some(9), "one duration per call");
    assert_eq!(duration.line["explicit_bounds"], serde_json::json!([0.001, 1.0]));
    let buckets: u64 =
        duration.line["bucket_counts"].as_array().expect("buckets").iter().filter_map(serde_json::Value::as_u64).sum();
    assert_eq!(buckets, 9, "the buckets hold every call once");

    // Families beyond the calls travel too, under their convention names.
    assert!(points.iter().any(|point| point.name == "hardened.calls.active"), "in flight");
    #[cfg(target_os = "linux")]
    assert!(points.iter().any(|point| point.name == "process.cpu.time" && point.unit == "s"), "process metrics");
    exporter.shutdown().expect("the last export is taken");
}

#[test]
fn http_export_carries_every_call() {
    let sink = OtelSink::start();
    let exporter =
        MetricsExporter::start(&config(Protocol::HttpProtobuf, sink.http_endpoint(), MetricsTemporality::Cumulative))
            .expect("valid configuration")
            .expect("OTLP metrics are on");
    for _ in 0..5 {
        count_over_http();
    }
    // The final export of a shutdown carries the calls.
    exporter.shutdown().expect("the receiver takes the metrics");
    let points = sink
        .points_when(Duration::from_secs(10), |points| call_count(points, "http", "count_over_http", "ok").is_some());
    assert_eq!(call_count(&points, "http", "count_over_http", "ok"), Some(5.0), "{points:#?}");
}

#[test]
fn delta_exports_carry_the_calls_since_the_last_one() {
    let sink = OtelSink::start();
    let exporter = MetricsExporter::start(&config(Protocol::Grpc, sink.grpc_endpoint(), MetricsTemporality::Delta))
        .expect("valid configuration")
        .expect("OTLP metrics are on");
    for _ in 0..3 {
        count_in_deltas();
    }
    exporter.export_now().expect("first export");
    for _ in 0..4 {
        count_in_deltas();
    }
    exporter.export_now().expect("second export");
    let points = sink.points_when(Duration::from_secs(10), |points| {
        points_of(points, "grpc", "hardened.calls", "count_in_deltas").len() >= 2 * 6
    });
    let ok: Vec<(f64, i64)> = points_of(&points, "grpc", "hardened.calls", "count_in_deltas")
        .into_iter()
        .filter(|point| point.attribute("outcome") == Some("ok"))
        .map(|point| (point.value().expect("a sum"), point.temporality))
        .collect();
    assert_eq!(ok, [(3.0, 1), (4.0, 1)], "deltas, temporality 1 (delta)");
    let windows: Vec<(u64, u64)> = points_of(&points, "grpc", "hardened.calls", "count_in_deltas")
        .into_iter()
        .filter(|point| point.attribute("outcome") == Some("ok"))
        .map(|point| (point.line["start"].as_u64().expect("a start"), point.line["time"].as_u64().expect("a time")))
        .collect();
    assert_eq!(windows[1].0, windows[0].1, "the second delta starts where the first ended");
    exporter.shutdown().expect("stopped");
}

#[test]
fn a_collector_that_is_down_is_counted_and_does_not_block() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("bound").port();
    let mut config = config(Protocol::HttpProtobuf, format!("http://127.0.0.1:{port}"), MetricsTemporality::Cumulative);
    config.metric_export_timeout = Duration::from_secs(2);
    let exporter = MetricsExporter::start(&config).expect("valid configuration").expect("OTLP metrics are on");
    let failed = || {
        hardened::metrics::render()
            .lines()
            .find_map(|line| line.strip_prefix("hardened_telemetry_metric_exports_failed_total "))
            .and_then(|value| value.parse::<u64>().ok())
            .expect("the failure counter is registered")
    };
    let before = failed();
    let error = exporter.export_now().expect_err("nobody listens");
    assert!(!error.to_string().is_empty());
    assert_eq!(failed(), before + 1);
}

#[test]
fn duration_points_carry_the_trace_of_a_sampled_call_as_an_exemplar() {
    use tracing_subscriber::layer::SubscriberExt as _;

    let sink = OtelSink::start();
    let config = config(Protocol::Grpc, sink.grpc_endpoint(), MetricsTemporality::Cumulative);
    hardened::telemetry::install_exemplars(&config);
    let exporter = MetricsExporter::start(&config).expect("valid configuration").expect("OTLP metrics are on");
    // Every trace sampled: the default sampler at ratio 1.0.
    let provider = hardened::telemetry::tracer_provider(&TelemetryConfig::default()).expect("no exporter");
    let subscriber = tracing_subscriber::registry().with(hardened::telemetry::otel_layer(&provider));
    let trace_id = tracing::subscriber::with_default(subscriber, || {
        let _request = tracing::info_span!("request").entered();
        traced_over_otlp();
        hardened::telemetry::current_trace_ids().expect("the request span has ids").trace_id_hex()
    });
    exporter.export_now().expect("the receiver takes the metrics");

    let points = sink.points_when(Duration::from_secs(10), |points| {
        !points_of(points, "grpc", "hardened.call.duration", "traced_over_otlp").is_empty()
    });
    let duration = points_of(&points, "grpc", "hardened.call.duration", "traced_over_otlp")[0];
    let exemplars = duration.line["exemplars"].as_array().expect("a list");
    assert_eq!(exemplars.len(), 1, "{duration:#?}");
    assert_eq!(exemplars[0]["trace_id"], trace_id.as_str(), "the exemplar leads to the call's trace");
    assert!(exemplars[0]["value"].as_f64().expect("seconds") >= 0.0);
    exporter.shutdown().expect("stopped");
}
