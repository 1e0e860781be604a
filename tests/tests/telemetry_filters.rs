//! The log filter and the trace filter apart, over real HTTP: with the log at `warn`, a request through
//! `ServerTraceLayer` still has its span, and its outbound call carries a `traceparent` to a loopback
//! server; `/loggers` on the admin router reads and replaces both filters, and a filter that does not
//! parse is refused with nothing changed.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use hardened::admin::{AdminAccess, admin_router};
use hardened::http::ServerTraceLayer;
use hardened::propagation::TracedRequest as _;
use hardened::telemetry::{self, TelemetryConfig};
use serde_json::{Value, json};

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let address = listener.local_addr().expect("bound");
    tokio::spawn(async move { axum::serve(listener, router).await.expect("the server runs") });
    format!("http://{address}")
}

/// The `traceparent` each request to the downstream server carried, in order (`None` for none).
type Received = Arc<Mutex<Vec<Option<String>>>>;

/// The downstream server: records the `traceparent` it is sent.
async fn downstream(received: Received) -> String {
    let router = Router::new()
        .route(
            "/",
            get(|State(received): State<Received>, headers: HeaderMap| async move {
                let traceparent = headers.get("traceparent").and_then(|value| value.to_str().ok()).map(str::to_owned);
                received.lock().unwrap_or_else(PoisonError::into_inner).push(traceparent);
                "ok"
            }),
        )
        .with_state(received);
    serve(router).await
}

/// The service under test: each request makes one outbound call to `downstream`, traced.
async fn service(downstream: String) -> String {
    let router = Router::new()
        .route(
            "/call",
            get(|State(downstream): State<String>| async move {
                let response =
                    reqwest::Client::new().get(&downstream).traced().send().await.expect("downstream answers");
                response.text().await.expect("a body")
            }),
        )
        .layer(ServerTraceLayer::new())
        .with_state(downstream);
    serve(router).await
}

fn last(received: &Received) -> Option<String> {
    received.lock().unwrap_or_else(PoisonError::into_inner).last().cloned().expect("the downstream was called")
}

async fn put_loggers(admin: &str, body: Value) -> (u16, Value) {
    let response =
        reqwest::Client::new().put(format!("{admin}/loggers")).json(&body).send().await.expect("the admin answers");
    (response.status().as_u16(), response.json().await.expect("a JSON body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_log_still_traces_and_both_filters_change_at_run_time() {
    let config =
        TelemetryConfig { log_filter: "warn".into(), trace_filter: "info".into(), ..TelemetryConfig::default() };
    let _telemetry = telemetry::init(&config).expect("the only global subscriber of this binary");
    let received = Received::default();
    let service = service(downstream(Arc::clone(&received)).await).await;
    let admin = serve(admin_router(AdminAccess::new(), SocketAddr::from(([127, 0, 0, 1], 0)))).await;

    let filters: Value = reqwest::get(format!("{admin}/loggers")).await.expect("answers").json().await.expect("JSON");
    let log = filters["log"].as_str().expect("a log filter").to_owned();
    assert_eq!(filters["trace"], "info");

    assert_eq!(reqwest::get(format!("{service}/call")).await.expect("answers").text().await.expect("a body"), "ok");
    let traceparent = last(&received).expect("the outbound call carries a traceparent although the log is quiet");
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!((parts[0], parts[1].len(), parts[2].len()), ("00", 32, 16), "{traceparent}");
    assert_ne!(parts[1], "0".repeat(32));

    let (status, body) = put_loggers(&admin, json!({ "log": "debug", "trace": "info,hardened=loud" })).await;
    assert_eq!(status, 400);
    let error = body["error"].as_str().expect("the parse error");
    assert!(error.starts_with("invalid trace filter `info,hardened=loud`"), "{error}");
    let filters: Value = reqwest::get(format!("{admin}/loggers")).await.expect("answers").json().await.expect("JSON");
    assert_eq!(filters, json!({ "log": log, "trace": "info" }), "a bad filter changes neither");

    let (status, body) = put_loggers(&admin, json!({ "trace": "off" })).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({ "log": log, "trace": "off" }), "the filters now in force");
    reqwest::get(format!("{service}/call")).await.expect("answers");
    assert_eq!(last(&received), None, "nothing is traced, so nothing is propagated");

    let (status, body) = put_loggers(&admin, json!({ "log": "error", "trace": "info" })).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({ "log": "error", "trace": "info" }));
    reqwest::get(format!("{service}/call")).await.expect("answers");
    assert!(last(&received).is_some(), "traced again");

    let (status, _) = put_loggers(&admin, json!({})).await;
    assert_eq!(status, 400, "a body that changes nothing is a mistake");
}
