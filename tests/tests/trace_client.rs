//! Outbound calls made with `TracedRequest::traced` against a real server on loopback: each gets a client
//! span, a child of the caller's span, whose id the `traceparent` the server receives carries, with the
//! HTTP client attributes, and each is counted in the client duration histogram.

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::any;
use hardened::propagation::TracedRequest as _;
use opentelemetry::trace::{SpanKind, Status};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};
use tracing::Instrument as _;

/// The exporter behind this binary's global subscriber: the servers' tasks run on any worker thread.
fn exporter() -> &'static InMemorySpanExporter {
    hardened_tests::global_span_exporter()
}

/// A server that answers with the trace headers it received, and a route that answers 418. The tests
/// of this binary run at once: each uses its own methods, so that each counts only its own calls.
async fn server() -> (String, u16) {
    let echo = |headers: HeaderMap| async move {
        let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok()).unwrap_or("").to_owned();
        format!("{}\n{}", header("traceparent"), header("tracestate"))
    };
    let router = Router::new()
        .route("/echo", any(echo))
        .route("/teapot", any(|| async { (StatusCode::IM_A_TEAPOT, "short and stout") }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let address = listener.local_addr().expect("bound");
    tokio::spawn(async move { axum::serve(listener, router).await.expect("the server runs") });
    (format!("http://{address}"), address.port())
}

/// The finished spans once one is named `name` with `url.full` starting with `url`.
async fn span_of(name: &str, url: &str) -> (SpanData, Vec<SpanData>) {
    for _ in 0..500 {
        let spans = exporter().get_finished_spans().expect("readable");
        let found = spans
            .iter()
            .find(|span| span.name == name && attribute(span, "url.full").is_some_and(|full| full.starts_with(url)));
        if let Some(span) = found {
            return (span.clone(), spans);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no span {name} for {url}: {:#?}", exporter().get_finished_spans());
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes.iter().find(|pair| pair.key.as_str() == key).map(|pair| pair.value.to_string())
}

/// The count of `hardened_http_client_request_duration_seconds` for these labels, as `/metrics` shows it.
fn calls_counted(method: &str, server: &str, status: &str) -> u64 {
    let series = format!(
        "hardened_http_client_request_duration_seconds_count{{method=\"{method}\",server_address=\"{server}\",status=\"{status}\"}} "
    );
    hardened::metrics::render()
        .lines()
        .find_map(|line| line.strip_prefix(series.as_str()))
        .map_or(0, |count| count.parse().expect("a count"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traced_call_gets_a_client_span_whose_id_the_server_receives() {
    exporter();
    let (base, port) = server().await;
    let counted_before = calls_counted("GET", "127.0.0.1", "200");

    let caller = tracing::info_span!("caller");
    let url = format!("{base}/echo?token=s3cret");
    let response = reqwest::Client::new().get(&url).traced().send().instrument(caller.clone()).await.expect("answered");
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.text().await.expect("a body");
    drop(caller);

    let (client, spans) = span_of("GET", &format!("{base}/echo")).await;
    let caller = spans.iter().find(|span| span.name == "caller").expect("the caller's span");
    assert_eq!(client.span_kind, SpanKind::Client);
    assert_eq!(client.parent_span_id, caller.span_context.span_id(), "a child of the current span");
    assert_eq!(client.span_context.trace_id(), caller.span_context.trace_id());
    assert_eq!(attribute(&client, "http.request.method").as_deref(), Some("GET"));
    assert_eq!(attribute(&client, "server.address").as_deref(), Some("127.0.0.1"));
    assert_eq!(attribute(&client, "server.port"), Some(port.to_string()));
    assert_eq!(attribute(&client, "url.full"), Some(format!("{base}/echo?token=***")), "no query secret");
    assert_eq!(attribute(&client, "http.response.status_code").as_deref(), Some("200"));
    assert_eq!(attribute(&client, "error.type"), None);
    assert_eq!(client.status, Status::Unset);

    let (traceparent, _) = body.split_once('\n').expect("two lines");
    let expected = format!("00-{}-{}-01", client.span_context.trace_id(), client.span_context.span_id());
    assert_eq!(traceparent, expected, "the header names the client span");
    assert_eq!(calls_counted("GET", "127.0.0.1", "200"), counted_before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_status_and_a_refused_connection_mark_the_span_and_are_counted() {
    exporter();
    let (base, _) = server().await;
    let teapots_before = calls_counted("POST", "127.0.0.1", "418");
    let response = reqwest::Client::new().post(format!("{base}/teapot")).traced().send().await.expect("answered");
    assert_eq!(response.status(), StatusCode::IM_A_TEAPOT);
    let (teapot, _) = span_of("POST", &format!("{base}/teapot")).await;
    assert_eq!(attribute(&teapot, "http.response.status_code").as_deref(), Some("418"));
    assert_eq!(attribute(&teapot, "error.type").as_deref(), Some("418"));
    assert!(matches!(teapot.status, Status::Error { .. }), "{:?}", teapot.status);
    assert_eq!(calls_counted("POST", "127.0.0.1", "418"), teapots_before + 1);

    // A port nothing listens on: bound, then closed.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let closed_url = format!("http://{}/nobody", closed.local_addr().expect("bound"));
    drop(closed);
    let errors_before = calls_counted("DELETE", "127.0.0.1", "error");
    let refused = reqwest::Client::new().delete(&closed_url).traced().send().await;
    assert!(refused.is_err(), "nothing listens");
    let (failed, _) = span_of("DELETE", &closed_url).await;
    assert_eq!(attribute(&failed, "error.type").as_deref(), Some("connect"));
    assert_eq!(attribute(&failed, "http.response.status_code"), None);
    assert!(matches!(failed.status, Status::Error { .. }), "{:?}", failed.status);
    assert_eq!(calls_counted("DELETE", "127.0.0.1", "error"), errors_before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_received_tracestate_with_level_2_keys_is_passed_on_by_a_traced_call() {
    exporter();
    let (base, _) = server().await;
    let longest_multi_tenant = format!("{}@{}", "t".repeat(241), "v".repeat(14));
    let tracestate = format!("a=1,{longest_multi_tenant}=2,b=3");
    let mut incoming = http::HeaderMap::new();
    incoming.insert("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".parse().expect("valid"));
    incoming.insert("tracestate", tracestate.parse().expect("valid"));

    let handler = tracing::info_span!("handler");
    let _ = hardened::telemetry::set_parent(&handler, hardened::propagation::extract(&incoming));
    let inner = tracing::info_span!(parent: &handler, "inner");
    // PUT: the other tests' counts, by method, stay theirs.
    let response =
        reqwest::Client::new().put(format!("{base}/echo")).traced().send().instrument(inner).await.expect("answered");
    let body = response.text().await.expect("a body");
    let (traceparent, received) = body.split_once('\n').expect("two lines");
    assert!(traceparent.starts_with("00-0af7651916cd43dd8448eb211c80319c-"), "{traceparent}");
    assert_eq!(received, tracestate, "every member, in order, two spans down");
}
