//! Readiness once the shutdown has begun: 503 at once, without running a check. The shutdown flag is
//! process-wide and never clears, so this binary holds this one test alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use hardened::health::{CheckResult, Component, HealthConfig, HealthRegistry, HealthStatus, check_fn};

#[tokio::test]
async fn readiness_fails_at_once_when_the_shutdown_begins_while_liveness_holds() {
    let mut config = HealthConfig::default();
    config.cache_ttl = Duration::ZERO;
    let health = HealthRegistry::new(config);
    let runs = Arc::new(AtomicU32::new(0));
    let database = {
        let runs = Arc::clone(&runs);
        check_fn(move || {
            runs.fetch_add(1, Ordering::SeqCst);
            async { CheckResult::healthy() }
        })
    };
    health.register(Component::new("database", database));
    health.register(Component::new("event-loop", check_fn(|| async { CheckResult::healthy() })).liveness());
    health.startup_gate().complete();

    let client = reqwest::Client::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let base = format!("http://{}", listener.local_addr().expect("a bound address"));
    tokio::spawn(async move { axum::serve(listener, hardened::http::ops_router_with(health)).await });

    let ready = client.get(format!("{base}/health/ready")).send().await.expect("an answer");
    assert_eq!(ready.status(), 200);
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    assert!(hardened::shutdown::begin());

    for path in ["/health/ready", "/readyz"] {
        let ready = client.get(format!("{base}{path}")).send().await.expect("an answer");
        assert_eq!(ready.status(), 503, "{path}");
        let body: serde_json::Value = ready.json().await.expect("a JSON body");
        assert_eq!(body["status"], "unhealthy");
        assert_eq!(body["message"], "shutting down: not taking new work");
        assert_eq!(body["checks"], serde_json::json!({}), "no check runs once the shutdown has begun");
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1, "readiness answers without touching the dependency");

    let live = client.get(format!("{base}/health/live")).send().await.expect("an answer");
    assert_eq!(live.status(), 200, "a process shutting down is still alive: no restart mid-drain");

    let detailed = client.get(format!("{base}/health")).send().await.expect("an answer");
    assert_eq!(detailed.status(), 503);
    let body: serde_json::Value = detailed.json().await.expect("a JSON body");
    assert_eq!(body["shutting_down"], true);
    assert_eq!(body["probes"]["readiness"]["message"], "shutting down: not taking new work");
    assert_eq!(body["checks"]["database"]["status"], "healthy", "the detailed view still shows each check");
    assert_eq!(serde_json::to_value(HealthStatus::Unhealthy).expect("serialises"), "unhealthy");
}
