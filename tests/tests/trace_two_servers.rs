//! Two axum servers on loopback, both behind the server trace layer: a request to A, whose handler calls B
//! with the reqwest helper, makes one trace across both (A's server span, the handler, its client span, B's
//! server span), as the in-memory exporter sees it.

use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use hardened::hardened;
use hardened::http::ServerTraceLayer;
use hardened::propagation::TracedRequest as _;
use opentelemetry::trace::{SpanId, SpanKind, Status};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};

/// The exporter behind this binary's global subscriber: the servers' tasks run on any worker thread.
fn exporter() -> &'static InMemorySpanExporter {
    hardened_tests::global_span_exporter()
}

#[derive(Debug)]
struct Upstream(String);

impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "upstream failed: {}", self.0)
    }
}

#[hardened(kind = "handler")]
async fn place_order(client: &reqwest::Client, items: &str, id: u32) -> Result<String, Upstream> {
    let response =
        client.get(format!("{items}/items/{id}")).traced().send().await.map_err(|error| Upstream(error.to_string()))?;
    response.text().await.map_err(|error| Upstream(error.to_string()))
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let address = listener.local_addr().expect("bound");
    tokio::spawn(async move { axum::serve(listener, router).await.expect("the server runs") });
    format!("http://{address}")
}

/// B: items, and a route that fails.
async fn server_b() -> String {
    let router = Router::new()
        .route("/items/{id}", get(|Path(id): Path<u32>| async move { format!("item {id}") }))
        .route("/broken", get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down") }))
        .layer(ServerTraceLayer::new());
    serve(router).await
}

/// A: orders, each fetching its item from B.
async fn server_a(items: String) -> String {
    let router = Router::new()
        .route(
            "/orders/{id}",
            get(|State(items): State<String>, Path(id): Path<u32>| async move {
                place_order(&reqwest::Client::new(), &items, id).await.map_err(|error| error.to_string())
            }),
        )
        .layer(ServerTraceLayer::new())
        .with_state(items);
    serve(router).await
}

/// The finished spans once `enough` holds of them: a server span ends as its response is sent, a moment
/// after the client may have read it.
async fn spans_when(enough: impl Fn(&[SpanData]) -> bool) -> Vec<SpanData> {
    for _ in 0..500 {
        let spans = exporter().get_finished_spans().expect("readable");
        if enough(&spans) {
            return spans;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the expected spans did not arrive: {:#?}", exporter().get_finished_spans());
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes.iter().find(|pair| pair.key.as_str() == key).map(|pair| pair.value.to_string())
}

fn span_named<'a>(spans: &'a [SpanData], name: &str, path: &str) -> Option<&'a SpanData> {
    spans.iter().find(|span| span.name == name && attribute(span, "url.path").as_deref() == Some(path))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_through_two_servers_is_one_trace() {
    exporter();
    let b = server_b().await;
    let a = server_a(b).await;

    let body = reqwest::get(format!("{a}/orders/7")).await.expect("A answers").text().await.expect("a body");
    assert_eq!(body, "item 7");

    let spans = spans_when(|spans| {
        span_named(spans, "GET /orders/{id}", "/orders/7").is_some()
            && span_named(spans, "GET /items/{id}", "/items/7").is_some()
    })
    .await;
    let server_a = span_named(&spans, "GET /orders/{id}", "/orders/7").expect("A's server span");
    let handler = spans.iter().find(|span| span.name == "place_order").expect("A's handler span");
    let server_b = span_named(&spans, "GET /items/{id}", "/items/7").expect("B's server span");

    let trace = server_a.span_context.trace_id();
    assert!([handler, server_b].iter().all(|span| span.span_context.trace_id() == trace), "one trace");
    assert_eq!(server_a.parent_span_id, SpanId::INVALID, "A starts the trace: the client sent none");
    assert_eq!(handler.parent_span_id, server_a.span_context.span_id(), "the handler runs inside A's span");
    let client = spans
        .iter()
        .find(|span| span.span_kind == SpanKind::Client && span.parent_span_id == handler.span_context.span_id())
        .expect("the client span of A's call to B");
    assert_eq!(server_b.parent_span_id, client.span_context.span_id(), "B continues from A's call to it");
    assert!(server_b.parent_span_is_remote);

    for (span, route, path) in [(server_a, "/orders/{id}", "/orders/7"), (server_b, "/items/{id}", "/items/7")] {
        assert_eq!(span.span_kind, SpanKind::Server);
        assert_eq!(attribute(span, "http.request.method").as_deref(), Some("GET"));
        assert_eq!(attribute(span, "http.route").as_deref(), Some(route), "the template, not the path");
        assert_eq!(attribute(span, "url.path").as_deref(), Some(path));
        assert_eq!(attribute(span, "http.response.status_code").as_deref(), Some("200"));
        assert_eq!(span.status, Status::Unset);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_error_marks_the_span_and_a_malformed_traceparent_starts_a_new_trace() {
    exporter();
    let b = server_b().await;
    let client = reqwest::Client::new();
    let malformed_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let response = client
        .get(format!("{b}/broken"))
        .header("traceparent", format!("00-{}-00f067aa0ba902b7-01", malformed_trace.to_uppercase()))
        .send()
        .await
        .expect("B answers");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);

    let spans = spans_when(|spans| span_named(spans, "GET /broken", "/broken").is_some()).await;
    let broken = span_named(&spans, "GET /broken", "/broken").expect("B's server span");
    assert!(matches!(broken.status, Status::Error { .. }), "{:?}", broken.status);
    assert_eq!(attribute(broken, "http.response.status_code").as_deref(), Some("503"));
    assert_eq!(broken.parent_span_id, SpanId::INVALID, "a new trace");
    assert_ne!(broken.span_context.trace_id().to_string(), malformed_trace);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_traceparent_is_continued_by_the_server_span() {
    exporter();
    let b = server_b().await;
    let response = reqwest::Client::new()
        .get(format!("{b}/items/42"))
        .header("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        .send()
        .await
        .expect("B answers");
    assert!(response.status().is_success());

    let spans = spans_when(|spans| span_named(spans, "GET /items/{id}", "/items/42").is_some()).await;
    let span = span_named(&spans, "GET /items/{id}", "/items/42").expect("B's server span");
    assert_eq!(span.span_context.trace_id().to_string(), "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(span.parent_span_id.to_string(), "b7ad6b7169203331");
}
