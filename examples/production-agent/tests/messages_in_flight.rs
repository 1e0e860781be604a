//! The limit of messages in flight (`[concurrency.messages]`, a tower layer on the route), against the
//! real `agent-server` over HTTP: a message over the limit queues for its wait, then is answered 503
//! with `Retry-After` while the messages holding the places wait for the model.

mod support;

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{Value, json};
use support::{Server, client, serve_on};
use tokio::sync::Notify;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_the_limit_is_answered_503_while_the_limit_is_full() {
    // The model hangs on its first request, which holds the only place, and says when it has it.
    let asked = Arc::new(Notify::new());
    let asking = Arc::clone(&asked);
    let upstream = axum::Router::new().fallback(move || {
        let asking = Arc::clone(&asking);
        async move {
            asking.notify_one();
            std::future::pending::<StatusCode>().await
        }
    });
    let address = serve_on("127.0.0.1", upstream).await;
    let base_url = format!("http://{address}/v1");
    let mut server = Server::with_env(&[
        ("OPENAI_BASE_URL", &base_url),
        ("HARDENED_CONCURRENCY__MESSAGES__LIMIT", "1"),
        ("HARDENED_CONCURRENCY__MESSAGES__WAIT", "100ms"),
    ]);
    let session = server.open_session("dev-key").await;
    let url = server.url(&format!("/v1/sessions/{session}/messages"));
    let say = || client().post(&url).bearer_auth("dev-key").json(&json!({ "content": "hello" })).send();

    let first = tokio::spawn(say());
    asked.notified().await;
    let over = say().await.expect("an answer");
    assert_eq!(over.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(over.headers()["retry-after"], "1");
    let body: Value = over.json().await.expect("a JSON error");
    assert_eq!((&body["guard"], &body["name"]), (&json!("concurrency"), &json!("messages")), "{body}");
    assert!(!first.is_finished(), "the first message still holds its place");

    // The first message's client goes away, and the server drains at once.
    first.abort();
    assert!(server.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_over_its_messages_in_flight_is_answered_503_while_other_keys_go_on() {
    // The model hangs on every request, and tells of each.
    let (arrived, mut arrivals) = tokio::sync::mpsc::unbounded_channel::<()>();
    let upstream = axum::Router::new().fallback(move || {
        let arrived = arrived.clone();
        async move {
            let _ = arrived.send(());
            std::future::pending::<StatusCode>().await
        }
    });
    let address = serve_on("127.0.0.1", upstream).await;
    let base_url = format!("http://{address}/v1");
    let mut server = Server::with_env(&[
        ("OPENAI_BASE_URL", &base_url),
        ("HARDENED_BULKHEAD__MESSAGES_PER_KEY__MAX", "1"),
        ("HARDENED_BULKHEAD__MESSAGES_PER_KEY__WAIT", "100ms"),
    ]);
    let (developer, reader) = (server.open_session("dev-key").await, server.open_session("reader-key").await);
    let say = |key: &'static str, session: &str| {
        let url = server.url(&format!("/v1/sessions/{session}/messages"));
        async move { client().post(&url).bearer_auth(key).json(&json!({ "content": "hello" })).send().await }
    };

    let first = tokio::spawn(say("dev-key", &developer));
    arrivals.recv().await.expect("the developer's message reaches the model");
    let over = say("dev-key", &developer).await.expect("an answer");
    assert_eq!(over.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(over.headers()["retry-after"], "1");
    let body: Value = over.json().await.expect("a JSON error");
    assert_eq!((&body["guard"], &body["name"]), (&json!("bulkhead"), &json!("messages_per_key")), "{body}");

    // The reader's key has its own place: its message reaches the model while the developer's holds theirs.
    let other = tokio::spawn(say("reader-key", &reader));
    arrivals.recv().await.expect("the reader's message reaches the model");
    first.abort();
    other.abort();
    assert!(server.stop().success());
}
