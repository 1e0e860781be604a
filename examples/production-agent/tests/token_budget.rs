//! Each API key's budget of model tokens per minute (`[rate.tenant_tokens]`, a keyed, weighted limit),
//! against the real `agent-server` over HTTP with the scripted model: a call takes its estimate, is
//! settled with the tokens the model reported, and a key over its budget is answered 429 with
//! `Retry-After` from its bucket, while another key is not; a message larger than the whole budget is 413.

mod support;

use axum::http::StatusCode;
use serde_json::{Value, json};
use support::{Server, client};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_over_its_token_budget_is_answered_429_with_retry_after_and_others_are_not() {
    // 4,000 tokens a minute per key. A call's estimate is its context's bytes over 4 plus `max_tokens`
    // (1,024); the scripted model reports a token per word it read or wrote.
    let mut server = Server::with_env(&[("HARDENED_RATE__TENANT_TOKENS__PER_MINUTE", "4000")]);
    let developer = server.open_session("dev-key").await;
    let say = |key: &'static str, session: String, content: String| {
        let url = server.url(&format!("/v1/sessions/{session}/messages"));
        async move { client().post(&url).bearer_auth(key).json(&json!({ "content": content })).send().await }
    };

    // Estimated 1,024 and more; the scripted model reports a few tokens, and the rest come back.
    for _ in 0..3 {
        let small = say("dev-key", developer.clone(), "hello".to_owned()).await.expect("an answer");
        assert_eq!(small.status(), StatusCode::OK, "a small message is settled at what it used");
    }
    // 1,500 words: estimated about 2,900, and the model reports reading 1,500 and more, which stay spent;
    // the next call's context holds those words, and its estimate no longer fits.
    let long = say("dev-key", developer.clone(), "word ".repeat(1_500)).await.expect("an answer");
    assert_eq!(long.status(), StatusCode::OK);
    let over = say("dev-key", developer.clone(), "hello".to_owned()).await.expect("an answer");
    assert_eq!(over.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = over.headers()["retry-after"].to_str().expect("text").parse().expect("seconds");
    assert!((1..=60).contains(&retry_after), "Retry-After: {retry_after}");
    let body: Value = over.json().await.expect("a JSON error");
    assert!(body.to_string().contains("tenant_tokens"), "{body}");

    // Another key has its own budget.
    let reader = server.open_session("reader-key").await;
    let other = say("reader-key", reader.clone(), "hello".to_owned()).await.expect("an answer");
    assert_eq!(other.status(), StatusCode::OK);
    // A message whose estimate is over the whole budget can never pass: 413, with no Retry-After.
    let huge = say("reader-key", reader, "x".repeat(16_000)).await.expect("an answer");
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(huge.headers().get("retry-after").is_none());

    let metrics = client().get(server.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    assert!(metrics.contains("hardened_rate_limiter_keys{name=\"tenant_tokens\"} 2"), "{metrics}");
    assert!(server.stop().success());
}
