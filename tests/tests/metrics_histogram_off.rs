//! `histogram = false`: a function keeps its call counters (by outcome, in flight) and has no
//! `hardened_call_duration_seconds` series, in the Prometheus text, in `OpenMetrics`, over OTLP, in the
//! exemplars and in the admin listener's `/calls`; a sibling with a histogram keeps its own.

use std::net::SocketAddr;
use std::time::Duration;

use hardened::hardened;
use hardened::telemetry::{self, MetricsExporter, MetricsExporters, MetricsTemporality, Protocol, TelemetryConfig};
use hardened_tests::otelsink::{OtelSink, ReceivedPoint};
use hardened_tests::{calls, duration_histogram, sample};
use tracing_subscriber::layer::SubscriberExt as _;

#[derive(Debug, thiserror::Error)]
#[error("refused: {0}")]
struct Refused(#[from] hardened::Rejected);

#[derive(Debug, thiserror::Error)]
#[error("failed")]
struct Failed;

#[hardened(kind = "tool", histogram = false)]
fn counted_only(ok: bool) -> Result<(), Failed> {
    if ok { Ok(()) } else { Err(Failed) }
}

/// Called by one test only, which counts its calls.
#[hardened(kind = "tool", histogram = false)]
fn counted_here(ok: bool) -> Result<(), Failed> {
    if ok { Ok(()) } else { Err(Failed) }
}

#[hardened(kind = "tool", histogram = false, bulkhead = 10)]
async fn counted_only_guarded() -> Result<u8, Refused> {
    tokio::task::yield_now().await;
    Ok(1)
}

#[hardened(kind = "tool")]
fn timed_too() {}

/// The lines of `exposition` about the series of `function`.
fn lines_of<'a>(exposition: &'a str, function: &str) -> Vec<&'a str> {
    let label = format!("function=\"{function}\"");
    exposition.lines().filter(|line| line.contains(&label)).collect()
}

#[test]
fn the_exposition_has_its_counters_and_no_duration_series() {
    counted_here(true).expect("ok");
    counted_here(true).expect("ok");
    counted_here(false).expect_err("an error");
    timed_too();

    assert_eq!(calls("counted_here", "ok"), 2);
    assert_eq!(calls("counted_here", "error"), 1);
    assert_eq!(sample("hardened_in_flight", &[("function", "counted_here")]), Some(0));
    assert_eq!(duration_histogram("counted_here"), None, "no duration series");
    let sibling = duration_histogram("timed_too").expect("its sibling's stays");
    assert!(sibling.count >= 1 && !sibling.buckets.is_empty(), "{sibling:?}");

    let text = hardened::metrics::render();
    let lines = lines_of(&text, "counted_here");
    assert!(lines.iter().any(|line| line.starts_with("hardened_calls_total{") && line.ends_with(" 2")), "{lines:#?}");
    assert!(lines.iter().any(|line| line.starts_with("hardened_in_flight{")), "{lines:#?}");
    assert!(lines.iter().all(|line| !line.starts_with("hardened_call_duration_seconds")), "{lines:#?}");
    assert!(lines_of(&text, "timed_too").iter().any(|line| line.starts_with("hardened_call_duration_seconds_bucket")));

    let openmetrics = hardened::metrics::render_openmetrics();
    let lines = lines_of(&openmetrics, "counted_here");
    assert!(lines.iter().any(|line| line.starts_with("hardened_calls_total{")), "{lines:#?}");
    assert!(lines.iter().all(|line| !line.starts_with("hardened_call_duration_seconds")), "{lines:#?}");

    let site = hardened::sites().iter().find(|site| site.name() == "counted_here").expect("registered");
    assert!(!site.has_histogram());
    assert_eq!(site.buckets().len(), 0);
}

#[test]
fn a_guarded_async_call_is_counted_without_a_histogram() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    for _ in 0..3 {
        assert_eq!(runtime.block_on(counted_only_guarded()).expect("admitted"), 1);
    }
    assert_eq!(calls("counted_only_guarded", "ok"), 3);
    assert_eq!(duration_histogram("counted_only_guarded"), None);
}

#[test]
fn a_sampled_call_leaves_no_exemplar_where_there_is_no_histogram() {
    let config = TelemetryConfig {
        service_name: "histogram-off-test".into(),
        sampler: telemetry::TraceSampler::AlwaysOn,
        ..TelemetryConfig::default()
    };
    telemetry::install_exemplars(&config);
    let subscriber = tracing_subscriber::registry().with(telemetry::trace_ids_layer(&config));
    tracing::subscriber::with_default(subscriber, || {
        counted_only(true).expect("ok");
        timed_too();
    });
    let kept = hardened::metrics::exemplars::by_series();
    assert!(kept.keys().all(|(function, _, _)| *function != "counted_only"), "{kept:?}");
    assert!(kept.keys().any(|(function, _, _)| *function == "timed_too"), "the sibling keeps its exemplar: {kept:?}");
}

fn points_of<'a>(points: &'a [ReceivedPoint], name: &str, function: &str) -> Vec<&'a ReceivedPoint> {
    points.iter().filter(|point| point.name == name && point.attribute("function") == Some(function)).collect()
}

#[test]
fn otlp_export_carries_its_counters_and_no_duration_points() {
    counted_only(true).expect("ok");
    timed_too();
    let sink = OtelSink::start();
    let config = TelemetryConfig {
        service_name: "histogram-off-test".into(),
        otlp_endpoint: Some(sink.grpc_endpoint()),
        protocol: Protocol::Grpc,
        metrics_exporters: MetricsExporters::BOTH,
        metrics_temporality: MetricsTemporality::Cumulative,
        metric_export_interval: Duration::from_hours(1),
        metric_export_timeout: Duration::from_secs(10),
        ..TelemetryConfig::default()
    };
    let exporter = MetricsExporter::start(&config).expect("valid configuration").expect("OTLP metrics are on");
    exporter.export_now().expect("the receiver takes the metrics");
    let points = sink.points_when(Duration::from_secs(10), |points| {
        !points_of(points, "hardened.calls", "counted_only").is_empty()
            && !points_of(points, "hardened.call.duration", "timed_too").is_empty()
            && !points_of(points, "hardened.calls.active", "counted_only").is_empty()
    });
    assert!(points_of(&points, "hardened.call.duration", "counted_only").is_empty(), "{points:#?}");
    exporter.shutdown().expect("the last export is taken");
}

#[tokio::test]
async fn calls_shows_no_latency_for_it() {
    counted_only(true).expect("ok");
    timed_too();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let base = format!("http://{}", listener.local_addr().expect("a bound address"));
    let router =
        hardened::admin::admin_router(hardened::admin::AdminAccess::new(), SocketAddr::from(([127, 0, 0, 1], 9090)));
    tokio::spawn(async move { axum::serve(listener, router).await });
    let snapshot: serde_json::Value =
        reqwest::get(format!("{base}/calls")).await.expect("an answer").json().await.expect("JSON");
    let sites = snapshot["sites"].as_array().expect("sites");
    let site = |function: &str| sites.iter().find(|site| site["function"] == function).expect("listed").clone();
    let counted = site("counted_only");
    assert!(counted["calls"]["ok"].as_u64() >= Some(1), "{counted}");
    assert_eq!(counted["duration"], serde_json::Value::Null, "{counted}");
    assert!(site("timed_too")["duration"]["count"].as_u64() >= Some(1));
}
