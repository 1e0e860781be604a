//! Memory exhaustion by any key, attempted over HTTP against the real `agent-server` with its default
//! limits: sessions opened without end, messages and bodies of any size, transcripts that grow forever.

mod support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Launch, Server, client, events_of};

/// The defaults of `[sessions]`, as the README documents them.
const SESSIONS_PER_KEY: usize = 100;
const SESSIONS: usize = 1_000;
const MESSAGE_BYTES: usize = 16 * 1024;
const TRANSCRIPT_BYTES: usize = 256 * 1024;

async fn open(server: &Server, key: &str) -> reqwest::Response {
    client().post(server.url("/v1/sessions")).bearer_auth(key).send().await.expect("an answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_limited_per_key_and_in_total() {
    // Nine more keys, so that ten keys together can reach the total.
    let keys: Vec<String> = (1..10).map(|n| format!("k{n}=key-{n}")).collect();
    let mut server = Launch::default().env("AGENT_API_KEYS", &keys.join(",")).start();
    for _ in 0..SESSIONS_PER_KEY {
        assert_eq!(open(&server, "dev-key").await.status(), 201);
    }
    let over = open(&server, "dev-key").await;
    assert_eq!(over.status(), StatusCode::TOO_MANY_REQUESTS, "one key cannot hold every session");
    let body: Value = over.json().await.expect("a JSON error");
    assert!(body["error"].as_str().expect("an error message").contains("100 sessions"), "{body}");
    let spare = server.open_session("reader-key").await;
    let closed = client().delete(server.url(&format!("/v1/sessions/{spare}"))).bearer_auth("reader-key").send().await;
    assert_eq!(closed.expect("an answer").status(), 204, "closing a session frees its place");

    for n in 1..10 {
        for _ in 0..SESSIONS_PER_KEY {
            assert_eq!(open(&server, &format!("key-{n}")).await.status(), 201);
        }
    }
    let full = open(&server, "reader-key").await;
    assert_eq!(full.status(), StatusCode::TOO_MANY_REQUESTS, "the service holds {SESSIONS} sessions at most");

    server.stop();
    let events = server.audit_events();
    let refused = events_of(&events, "SessionStart", "Denied");
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert_eq!((&refused[0]["user_id"], &refused[0]["details"]["limit"]), (&json!("developer"), &json!("per_key")));
    assert_eq!((&refused[1]["user_id"], &refused[1]["details"]["limit"]), (&json!("reader"), &json!("total")));
}

async fn say(server: &Server, session: &str, content: &str) -> reqwest::Response {
    client()
        .post(server.url(&format!("/v1/sessions/{session}/messages")))
        .bearer_auth("dev-key")
        .json(&json!({ "content": content }))
        .send()
        .await
        .expect("an answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_or_a_body_over_its_limit_is_refused_and_audited() {
    let mut server = Server::start();
    let session = server.open_session("dev-key").await;
    assert_eq!(say(&server, &session, &"x".repeat(MESSAGE_BYTES)).await.status(), 200, "at the limit");
    assert_eq!(say(&server, &session, &"x".repeat(MESSAGE_BYTES + 1)).await.status(), 413, "over it");
    // A body far over the server's own limit is refused on its declared length, before it is read: the
    // client sees the 413, or, when it is still writing, the connection closed under it.
    let huge = client()
        .post(server.url(&format!("/v1/sessions/{session}/messages")))
        .bearer_auth("dev-key")
        .json(&json!({ "content": "x".repeat(8 * 1024 * 1024) }))
        .send()
        .await;
    match huge {
        Ok(response) => assert_eq!(response.status(), 413, "a body far over the limit is not read whole"),
        Err(error) => assert!(error.is_request(), "the server closed the connection instead: {error}"),
    }
    let escaped = say(&server, &session, &"\u{1}".repeat(MESSAGE_BYTES)).await;
    assert_eq!(escaped.status(), 200, "a message at the limit fits its body limit however it is escaped");

    server.stop();
    let events = server.audit_events();
    let refused = events_of(&events, "UserMessage", "Denied");
    // The message over its limit is refused by the route, after authentication, and audited; the huge
    // body by the server on its declared length, before any handler runs.
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused.iter().all(|event| event["session_id"] == session.as_str() && event["user_id"] == "developer"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transcript_keeps_within_its_byte_limit_its_oldest_messages_going_first() {
    let server = Server::start();
    let session = server.open_session("dev-key").await;
    for n in 0..40 {
        let content = format!("message {n:02} {}", "x".repeat(MESSAGE_BYTES - 20));
        assert_eq!(say(&server, &session, &content).await.status(), 200);
    }
    let response = client()
        .get(server.url(&format!("/v1/sessions/{session}")))
        .bearer_auth("dev-key")
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), 200);
    let body = response.text().await.expect("a body");
    assert!(body.len() < TRANSCRIPT_BYTES + 8 * 1024, "a transcript of {} bytes", body.len());
    let transcript: Value = serde_json::from_str(&body).expect("JSON");
    let messages = transcript["conversation"]["messages"].as_array().expect("messages");
    let users: Vec<&str> =
        messages.iter().filter(|m| m["role"] == "user").filter_map(|m| m["content"].as_str()).collect();
    assert!(users.last().expect("a user's message").starts_with("message 39"), "the latest is kept");
    assert!(!users.iter().any(|content| content.starts_with("message 00")), "the oldest went");
}

#[test]
fn invalid_session_limits_are_refused_with_what_is_allowed() {
    let agent = "[[keys]]\nname = \"a\"\nkey = \"k\"\n\n[sessions]\nmax_message_bytes = 0\n";
    let output = Launch::default().agent_toml(agent).run(&["config", "check"]);
    assert_eq!(output.status.code(), Some(2));
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("sessions.max_message_bytes = 0; allowed:"), "{error}");
}
