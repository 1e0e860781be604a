//! The ops router over a real loopback server: every probe path and alias, status codes, JSON shapes,
//! and `/metrics` as Prometheus text.

use std::time::Duration;

use hardened::health::{CheckResult, Component, HealthConfig, HealthRegistry, check_fn};
use serde_json::Value;

/// Serves `router` on a loopback port; returns its base URL.
async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let base = format!("http://{}", listener.local_addr().expect("a bound address"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

async fn get(base: &str, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let response = reqwest::get(format!("{base}{path}")).await.expect("an answer");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.expect("a body"))
}

async fn get_json(base: &str, path: &str) -> (u16, Value) {
    let (status, headers, body) = get(base, path).await;
    assert_eq!(headers["content-type"], "application/json", "{path}");
    assert_eq!(headers["cache-control"], "no-store", "{path}");
    (status, serde_json::from_str(&body).expect("a JSON body"))
}

#[tokio::test]
async fn the_process_wide_router_answers_every_probe_and_its_aliases() {
    let base = serve(hardened::http::ops_router()).await;

    for path in ["/health/live", "/livez"] {
        let (status, body) = get_json(&base, path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(body["probe"], "liveness");
        assert_eq!(body["status"], "healthy");
        assert_eq!(body["checks"]["runtime"], "healthy", "building the router started the watchdog");
    }
    for path in ["/health/ready", "/readyz"] {
        let (status, body) = get_json(&base, path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(body["probe"], "readiness");
        assert_eq!(body["checks"]["breakers"], "healthy");
        assert_eq!(body["checks"]["audit"], "healthy");
    }

    let (status, body) = get_json(&base, "/health/startup").await;
    assert_eq!(status, 503, "startup fails until the application says it is done");
    assert_eq!(body["message"], "starting: initialisation not complete");
    hardened::health::startup_complete();
    let (status, body) = get_json(&base, "/health/startup").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "healthy");

    let (status, body) = get_json(&base, "/health").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["shutting_down"], false);
    for probe in ["liveness", "readiness", "startup"] {
        assert_eq!(body["probes"][probe]["status"], "healthy", "{probe}");
    }
    let runtime = &body["checks"]["runtime"];
    assert_eq!(runtime["probe"], "liveness");
    assert_eq!(runtime["criticality"], "critical");
    assert!(runtime["details"]["lag_ms"].is_number());
    assert!(runtime["duration_ms"].is_number());
    assert!(runtime["cached"].is_boolean());
    assert_eq!(body["checks"]["breakers"]["criticality"], "informational");
}

#[tokio::test]
async fn failing_probes_answer_503_with_the_reason_and_degraded_ones_200() {
    let mut config = HealthConfig::default();
    config.cache_ttl = Duration::ZERO;
    let health = HealthRegistry::new(config);
    health.register(Component::new("database", check_fn(|| async { CheckResult::unhealthy("connection refused") })));
    health.register(Component::new("search", check_fn(|| async { CheckResult::degraded("slow") })).informational());
    health.startup_gate().complete();
    let base = serve(hardened::http::ops_router_with(health.clone())).await;

    let (status, body) = get_json(&base, "/readyz").await;
    assert_eq!(status, 503);
    assert_eq!(
        body,
        serde_json::json!({
            "probe": "readiness",
            "status": "unhealthy",
            "message": "unhealthy: database",
            "checks": {"database": "unhealthy", "search": "degraded"},
        })
    );
    let (status, body) = get_json(&base, "/health").await;
    assert_eq!(status, 503);
    assert_eq!(body["checks"]["database"]["message"], "connection refused");
    assert_eq!(get_json(&base, "/livez").await.0, 200, "a dependency's outage leaves liveness alone");

    health.deregister("database");
    let (status, body) = get_json(&base, "/health/ready").await;
    assert_eq!(status, 200, "degraded still takes traffic");
    assert_eq!(body["status"], "degraded");
}

/// Whether `text` is the Prometheus text format: comments, and samples `name{labels} value`.
fn assert_prometheus_text(text: &str) {
    for line in text.lines().filter(|line| !line.is_empty()) {
        if let Some(comment) = line.strip_prefix("# ") {
            assert!(comment.starts_with("HELP ") || comment.starts_with("TYPE "), "unknown comment: {line}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let name = series.split('{').next().unwrap_or_default();
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name: {line}"
        );
        assert!(series == name || (series.ends_with('}') && series.contains('{')), "bad labels: {line}");
        assert!(matches!(value, "+Inf" | "-Inf" | "NaN") || value.parse::<f64>().is_ok(), "bad value: {line}");
    }
}

#[tokio::test]
async fn metrics_are_served_as_prometheus_text() {
    let health = HealthRegistry::new(HealthConfig::default());
    health.register(Component::new("exposition", check_fn(|| async { CheckResult::healthy() })));
    let base = serve(hardened::http::ops_router_with(health)).await;
    get(&base, "/health").await;

    let (status, headers, body) = get(&base, "/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], hardened::http::PROMETHEUS_CONTENT_TYPE);
    assert_eq!(headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    assert_prometheus_text(&body);
    assert!(body.contains("# TYPE hardened_health_status gauge"), "{body}");
    assert!(body.contains(r#"hardened_health_status{component="exposition"} 1"#), "{body}");
    assert!(body.contains("# TYPE hardened_build_info gauge"));
}
