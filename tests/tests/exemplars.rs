//! Exemplars: a call inside a sampled trace leaves its trace id on its duration bucket, on every finish
//! path (sync and async, with and without guards), and `/metrics` shows it in `OpenMetrics` to a scraper
//! that asks; an unsampled call leaves none, and the Prometheus text format is unchanged.

use std::time::Duration;

use hardened::hardened;
use hardened::metrics::exemplars::{self, Exemplar};
use hardened::telemetry::{self, TelemetryConfig, TraceSampler};
use tracing_subscriber::layer::SubscriberExt as _;

#[derive(Debug, thiserror::Error)]
#[error("refused: {0}")]
struct Refused(#[from] hardened::Rejected);

/// The trace id of the current span, as the call's body sees it.
fn current_trace_id() -> String {
    telemetry::current_trace_ids().expect("the call's span has ids").trace_id_hex()
}

#[hardened]
fn exemplar_sync_plain() -> String {
    current_trace_id()
}

#[hardened]
fn exemplar_called_twice() -> String {
    current_trace_id()
}

#[hardened(rate = 1_000_000)]
fn exemplar_sync_guarded() -> Result<String, Refused> {
    Ok(current_trace_id())
}

#[hardened]
async fn exemplar_async_plain() -> String {
    tokio::task::yield_now().await;
    current_trace_id()
}

#[hardened(breaker = "exemplar_async_breaker")]
async fn exemplar_async_single_pass() -> Result<String, Refused> {
    tokio::task::yield_now().await;
    Ok(current_trace_id())
}

#[hardened(retry = 1, timeout = "5s")]
async fn exemplar_async_retried() -> Result<String, Refused> {
    tokio::task::yield_now().await;
    Ok(current_trace_id())
}

#[hardened]
fn exemplar_unsampled() -> u32 {
    7
}

fn config(sampler: TraceSampler) -> TelemetryConfig {
    TelemetryConfig { service_name: "exemplars-test".into(), sampler, ..TelemetryConfig::default() }
}

/// Runs `body` under a subscriber that gives spans OpenTelemetry ids with `sampler`, with exemplars on.
fn traced<T>(sampler: TraceSampler, body: impl FnOnce() -> T) -> T {
    let config = config(sampler);
    telemetry::install_exemplars(&config);
    let subscriber = tracing_subscriber::registry().with(telemetry::trace_ids_layer(&config));
    tracing::subscriber::with_default(subscriber, body)
}

fn site(name: &str) -> &'static hardened::Site {
    hardened::sites().iter().find(|site| site.name() == name).expect("a registered site")
}

/// The exemplars `name` keeps, with the index of their bucket.
fn kept(name: &str) -> Vec<(usize, Exemplar)> {
    exemplars::exemplars(site(name))
        .into_iter()
        .enumerate()
        .filter_map(|(bucket, exemplar)| exemplar.map(|exemplar| (bucket, exemplar)))
        .collect()
}

/// Asserts that `name` kept exactly one exemplar, of trace `trace_id`, in the bucket its duration falls in.
fn assert_one_exemplar(name: &str, trace_id: &str) -> Exemplar {
    let kept = kept(name);
    let [(bucket, exemplar)] = kept.as_slice() else { panic!("{name}: one exemplar expected, found {kept:?}") };
    assert_eq!(exemplar.trace_id_hex(), trace_id, "{name}");
    let bounds: Vec<Duration> = site(name).buckets().collect();
    let value = Duration::from_nanos(exemplar.value_nanos);
    let expected = bounds.iter().position(|bound| value <= *bound).unwrap_or(bounds.len());
    assert_eq!(*bucket, expected, "{name}: a duration of {value:?} belongs in bucket {expected} of {bounds:?}");
    assert_ne!(exemplar.span_id, [0; 8], "{name}");
    assert!(
        exemplar.unix_nanos > 1_600_000_000_000_000_000,
        "{name}: a wall-clock time, found {}",
        exemplar.unix_nanos
    );
    *exemplar
}

fn unix_nanos() -> u64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970");
    u64::try_from(since_epoch.as_nanos()).expect("in range")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime")
}

#[test]
fn a_sampled_call_leaves_its_trace_on_its_bucket_on_every_finish_path() {
    traced(TraceSampler::AlwaysOn, || {
        let trace = exemplar_sync_plain();
        assert_one_exemplar("exemplar_sync_plain", &trace);

        let trace = exemplar_sync_guarded().expect("admitted");
        assert_one_exemplar("exemplar_sync_guarded", &trace);

        let runtime = runtime();
        let trace = runtime.block_on(exemplar_async_plain());
        assert_one_exemplar("exemplar_async_plain", &trace);

        let trace = runtime.block_on(exemplar_async_single_pass()).expect("admitted");
        assert_one_exemplar("exemplar_async_single_pass", &trace);

        let trace = runtime.block_on(exemplar_async_retried()).expect("admitted");
        assert_one_exemplar("exemplar_async_retried", &trace);

        // A bucket keeps its exemplar for `MIN_EXEMPLAR_AGE`; a later call of the bucket replaces it after
        // that. Which of the two this run sees depends on how long the second call started after the first
        // ended; either way, it must be the one the rule gives.
        let first = exemplar_called_twice();
        assert_one_exemplar("exemplar_called_twice", &first);
        let [(first_bucket, first_kept)] = kept("exemplar_called_twice")[..] else { unreachable!("one exemplar") };
        let second_started = unix_nanos();
        let second = exemplar_called_twice();
        let second_ended = unix_nanos();
        assert_ne!(first, second, "each call is a new trace");
        let min_age = u64::try_from(exemplars::MIN_EXEMPLAR_AGE.as_nanos()).expect("in range");
        let latest = kept("exemplar_called_twice");
        match latest.iter().find(|(_, exemplar)| exemplar.trace_id_hex() == second) {
            Some((bucket, _)) if *bucket == first_bucket => {
                assert!(second_ended - first_kept.unix_nanos >= min_age, "replaced before the minimum age: {latest:?}");
            }
            // A call of another bucket fills that bucket and leaves this one's.
            Some(_) => assert!(latest.contains(&(first_bucket, first_kept)), "{latest:?}"),
            None => {
                assert_eq!(latest, [(first_bucket, first_kept)]);
                assert!(second_started - first_kept.unix_nanos < min_age, "kept past the minimum age: {latest:?}");
            }
        }
    });
}

#[test]
fn a_call_in_an_unsampled_trace_leaves_no_exemplar() {
    traced(TraceSampler::ParentBasedAlwaysOn, || {
        let mut headers = http::HeaderMap::new();
        let unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        headers.insert("traceparent", unsampled.parse().expect("a valid header"));
        let parent = tracing::info_span!("request");
        let _ = hardened::telemetry::set_parent(&parent, hardened::propagation::extract(&headers));
        let _entered = parent.enter();
        for _ in 0..10 {
            assert_eq!(exemplar_unsampled(), 7);
        }
    });
    assert_eq!(kept("exemplar_unsampled"), Vec::new());
}

#[test]
fn exemplars_are_off_under_a_sampler_that_never_samples_or_when_turned_off() {
    assert!(config(TraceSampler::AlwaysOn).keeps_exemplars());
    assert!(config(TraceSampler::ParentBasedTraceIdRatio).keeps_exemplars());
    assert!(!config(TraceSampler::AlwaysOff).keeps_exemplars());
    let ratio_zero = TelemetryConfig { sample_ratio: 0.0, ..config(TraceSampler::TraceIdRatio) };
    assert!(!ratio_zero.keeps_exemplars());
    let parent_based_zero = TelemetryConfig { sample_ratio: 0.0, ..config(TraceSampler::ParentBasedTraceIdRatio) };
    assert!(parent_based_zero.keeps_exemplars(), "a sampled caller still samples the call");
    let off = TelemetryConfig { exemplars: false, ..config(TraceSampler::AlwaysOn) };
    assert!(!off.keeps_exemplars());

    let resolve = |value: &str| {
        telemetry::resolve_env(TelemetryConfig::default(), [("OTEL_METRICS_EXEMPLAR_FILTER".into(), value.into())])
    };
    assert!(!resolve("always_off").expect("a known filter").config.exemplars);
    assert!(resolve("trace_based").expect("a known filter").config.exemplars);
    let error = resolve("sometimes").expect_err("an unknown filter").to_string();
    assert_eq!(
        error,
        "invalid `OTEL_METRICS_EXEMPLAR_FILTER` value `sometimes`: expected `always_on`, `always_off` or `trace_based`"
    );
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let address = listener.local_addr().expect("an address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{address}")
}

#[hardened]
fn exemplar_scraped() -> String {
    current_trace_id()
}

#[test]
fn metrics_show_exemplars_in_openmetrics_to_a_scraper_that_asks_and_prometheus_text_to_others() {
    let trace = traced(TraceSampler::AlwaysOn, exemplar_scraped);
    let exemplar = assert_one_exemplar("exemplar_scraped", &trace);

    runtime().block_on(async {
        let base = serve(hardened::http::ops_router_with(hardened::health::HealthRegistry::new(
            hardened::health::HealthConfig::default(),
        )))
        .await;
        let client = reqwest::Client::new();
        // The Accept header Prometheus sends with exemplar storage on.
        let accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,\
                      text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        let response = client.get(format!("{base}/metrics")).header("accept", accept).send().await.expect("an answer");
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/openmetrics-text; version=1.0.0; charset=utf-8");
        let body = response.text().await.expect("a body");
        assert!(body.ends_with("# EOF\n"), "{body}");
        assert!(body.contains("# TYPE hardened_calls counter\n"), "{body}");
        assert!(body.contains("# TYPE hardened_call_duration_seconds histogram\n"), "{body}");
        let line = body
            .lines()
            .find(|line| line.contains("function=\"exemplar_scraped\"") && line.contains(" # {"))
            .unwrap_or_else(|| panic!("no exemplar for exemplar_scraped in {body}"));
        let expected = format!(
            " # {{trace_id=\"{trace}\",span_id=\"{}\"}} {} ",
            exemplar.span_id_hex(),
            exemplar.value_nanos as f64 / 1e9
        );
        assert!(line.starts_with("hardened_call_duration_seconds_bucket{"), "{line}");
        assert!(line.contains(&expected), "{line} lacks {expected}");
        let calls = "hardened_calls_total{function=\"exemplar_scraped\",module=\"exemplars\",kind=\"function\",outcome=\"ok\"} 1";
        assert!(body.contains(calls), "{body}");

        let response = client.get(format!("{base}/metrics")).send().await.expect("an answer");
        assert_eq!(response.headers()["content-type"], hardened::http::PROMETHEUS_CONTENT_TYPE);
        let body = response.text().await.expect("a body");
        assert!(!body.contains("# EOF"), "{body}");
        assert!(!body.contains(&trace), "no exemplar in the Prometheus text format");
        assert!(body.contains("# TYPE hardened_calls_total counter\n"), "{body}");
    });
}
