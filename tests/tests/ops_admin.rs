//! The admin router over a real loopback server: `/guards` lists every guard and its state, the
//! operations endpoints are behind the bearer token when one is set, closed on a non-loopback address
//! without one, and never on the public ops router.

use std::net::SocketAddr;

use hardened::admin::{AdminAccess, admin_router};
use hardened::rate_limit::Demand;
use serde_json::Value;

/// Serves `router` on a loopback port; returns its base URL.
async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let base = format!("http://{}", listener.local_addr().expect("a bound address"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9090))
}

async fn get(base: &str, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(format!("{base}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("an answer")
}

const GUARDS: &str = r#"
[breaker.ops_llm]
min_calls = 2
window = 10
open_for = "1h"

[rate.ops_tenants]
per_second = 1
burst = 1

[concurrency.ops_model]
limit = 4

[bulkhead.ops_tools]
max = 3

[retry.ops_retry]
attempts = 3

[hedge.ops_hedge]
after = "250ms"
max = 2
"#;

#[tokio::test]
async fn guards_lists_every_kind_by_name_with_its_state() {
    hardened::config::install(hardened::config::parse(GUARDS, "ops.toml").expect("valid"));
    let breaker = hardened::breaker("ops_llm");
    for _ in 0..2 {
        breaker.try_acquire().expect("closed").record(true);
    }
    let limiter = hardened::rate_limiter("ops_tenants");
    let _ticket = limiter.try_take(Demand::keyed(&"tenant-a", 1_u32)).expect("tenant-a's first token");
    for _ in 0..3 {
        limiter.try_take(Demand::keyed(&"tenant-a", 1_u32)).expect_err("tenant-a spent its burst");
    }
    let _ticket = limiter.try_take(Demand::keyed(&"tenant-b", 1_u32)).expect("tenant-b's own bucket");
    let concurrency = hardened::concurrency_limit("ops_model");
    let _turn = concurrency.try_acquire().expect("a turn");
    let bulkhead = hardened::bulkhead("ops_tools");
    let permits = [bulkhead.try_acquire().expect("a permit"), bulkhead.try_acquire().expect("a permit")];
    let _ = hardened::retry_policy("ops_retry");
    let _ = hardened::hedge_policy("ops_hedge");

    let base = serve(admin_router(AdminAccess::new(), loopback())).await;
    let response = get(&base, "/guards", None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let guards: Value = response.json().await.expect("JSON");

    let llm = &guards["breaker"]["ops_llm"];
    assert_eq!(llm["state"], "open", "{llm}");
    let remaining = llm["open_remaining_seconds"].as_f64().expect("set while open");
    assert!(remaining > 0.0 && remaining <= 3600.0, "{remaining}");
    assert_eq!(llm["window"]["kind"], "count");
    assert_eq!(llm["window"]["size"], 10);
    assert_eq!((llm["window"]["calls"].clone(), llm["window"]["failures"].clone()), (2.into(), 2.into()));
    assert_eq!(llm["calls"]["failure"], 2);
    assert_eq!(llm["min_calls"], 2);
    assert_eq!(llm["open_for_seconds"], 3600.0);

    let tenants = &guards["rate"]["ops_tenants"];
    assert_eq!(tenants["calls"], 1);
    assert_eq!(tenants["period_seconds"], 1.0);
    assert_eq!(tenants["burst"], 1);
    assert_eq!(tenants["scope"], "local");
    assert_eq!(tenants["refused"], 3);
    assert_eq!(tenants["keyed"]["keys"], 2);
    assert_eq!(tenants["keyed"]["max_keys"], 10_000);
    assert_eq!(tenants["keyed"]["top_refused"][0]["key"], "\"tenant-a\"");
    assert_eq!(tenants["keyed"]["top_refused"][0]["refused"], 3);
    assert_eq!(tenants["keyed"]["top_refused"].as_array().map(Vec::len), Some(1), "tenant-b was never refused");

    let model = &guards["concurrency"]["ops_model"];
    assert_eq!(model["limit"], 4);
    assert_eq!(model["in_flight"], 1);
    assert_eq!(model["queued"], 0);
    assert_eq!(model["adaptive"], Value::Null);

    let tools = &guards["bulkhead"]["ops_tools"];
    assert_eq!(
        (tools["max"].clone(), tools["in_use"].clone(), tools["available"].clone()),
        (3.into(), 2.into(), 1.into())
    );

    assert_eq!(guards["retry"]["ops_retry"]["attempts"], 3);
    assert_eq!(guards["hedge"]["ops_hedge"]["delay_seconds"], 0.25);
    assert_eq!(guards["hedge"]["ops_hedge"]["max"], 2);

    drop(permits);
    let guards: Value = get(&base, "/guards", None).await.json().await.expect("JSON");
    assert_eq!(guards["bulkhead"]["ops_tools"]["in_use"], 0, "read again at each request");
}

#[tokio::test]
async fn with_a_token_the_operations_endpoints_need_it_and_the_probes_do_not() {
    let base = serve(admin_router(AdminAccess::new().token("s3cret-token"), loopback())).await;

    for token in [None, Some("wrong"), Some("s3cret-token-and-more"), Some("")] {
        let response = get(&base, "/guards", token).await;
        assert_eq!(response.status(), 401, "{token:?}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer realm=\"admin\"");
    }
    assert_eq!(get(&base, "/guards", Some("s3cret-token")).await.status(), 200);
    let lower_case = reqwest::Client::new()
        .get(format!("{base}/guards"))
        .header("authorization", "bearer s3cret-token")
        .send()
        .await
        .expect("an answer");
    assert_eq!(lower_case.status(), 200, "the scheme is case-insensitive");
    for path in ["/health/live", "/readyz", "/metrics"] {
        assert_eq!(get(&base, path, None).await.status(), 200, "{path} stays open to probes and scrapers");
    }
}

#[tokio::test]
async fn without_a_token_a_non_loopback_listener_keeps_the_operations_endpoints_closed() {
    let everywhere = SocketAddr::from(([0, 0, 0, 0], 9090));
    let base = serve(admin_router(AdminAccess::new(), everywhere)).await;
    let response = get(&base, "/guards", None).await;
    assert_eq!(response.status(), 403);
    assert!(response.text().await.expect("a body").contains("admin_token"), "says how to open them");
    assert_eq!(get(&base, "/livez", None).await.status(), 200);

    let allowed = serve(admin_router(AdminAccess::new().allow_unauthenticated(true), everywhere)).await;
    assert_eq!(get(&allowed, "/guards", None).await.status(), 200, "the operator allowed it explicitly");
}

#[tokio::test]
async fn the_public_ops_router_has_no_operations_endpoints() {
    let base = serve(hardened::http::ops_router()).await;
    for path in ["/guards", "/config", "/loggers"] {
        assert_eq!(get(&base, path, None).await.status(), 404, "{path}");
    }
}
