//! Attacks on `agent-server`'s authentication, each performed over HTTP against the real server: a flood of
//! failed attempts with huge paths, the client's address behind a proxy, the ways a key is presented,
//! decisions that must leave an `AuthorizationCheck`, and configurations that must not start.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use support::{Launch, Server, client, events_of};

/// The failed attempts an address may make per interval under the development configuration.
const FAILURES_PER_ADDRESS: usize = 10;

/// A path of 60,000 characters: what an attacker sends to make each audit record as large as possible.
fn huge(prefix: &str) -> String {
    format!("{prefix}{}", "a".repeat(60_000))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_failed_authentications_with_huge_paths_is_refused_and_audited_in_bounded_space() {
    let mut server = Server::start();
    let client = client();
    let (mut unauthorized, mut too_many) = (0, 0);
    for attempt in 0..500 {
        // On two routes, whose parameter is the huge part; half without a key, half with a wrong one.
        let mut request = if attempt % 2 == 0 {
            client.get(server.url(&huge("/v1/sessions/")))
        } else {
            client.post(server.url(&format!("{}/messages", huge("/v1/sessions/"))))
        };
        if attempt % 4 < 2 {
            request = request.bearer_auth("not-a-key");
        }
        let response = request.send().await.expect("an answer");
        match response.status() {
            StatusCode::UNAUTHORIZED => unauthorized += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                let retry_after = response.headers()["retry-after"].to_str().expect("ASCII");
                let retry_after: u64 = retry_after.parse().expect("Retry-After in seconds");
                assert!((1..=60).contains(&retry_after), "Retry-After within the interval: {retry_after}");
                too_many += 1;
            }
            status => panic!("attempt {attempt}: {status}"),
        }
    }
    assert_eq!(unauthorized, FAILURES_PER_ADDRESS, "the first failures of the interval are answered 401");
    assert_eq!(too_many, 500 - FAILURES_PER_ADDRESS, "the rest are refused before any key is compared");

    server.stop();
    let bytes = server.audit_bytes();
    assert!(bytes < 8 * 1024, "the flood grew the audit file by {bytes} bytes");
    let events = server.audit_events();
    let failures = events_of(&events, "AuthenticationAttempt", "Failure");
    assert_eq!(failures.len(), 1, "one event for the address and the interval: {failures:?}");
    let failure = failures[0];
    assert_eq!(failure["ip_address"], "127.0.0.1");
    assert_eq!(failure["details"]["attempts"], 500);
    assert_eq!(failure["details"]["refused"], 500 - FAILURES_PER_ADDRESS);
    let resource = failure["resource"].as_str().expect("a resource");
    assert!(resource.starts_with("/v1/sessions/{id}"), "the route, never the path: {resource}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_address_is_refused_even_with_a_valid_key_and_other_addresses_are_not() {
    let mut server = Launch::default().env("HARDENED_SERVER__TRUST_FORWARDED_FOR", "true").start();
    let client = client();
    let from = |address: &'static str, key: &'static str| {
        client.post(server.url("/v1/sessions")).header("x-forwarded-for", address).bearer_auth(key)
    };
    for _ in 0..FAILURES_PER_ADDRESS {
        let response = from("198.51.100.1", "guess").send().await.expect("an answer");
        assert_eq!(response.status(), 401);
    }
    let guessed = from("198.51.100.1", "dev-key").send().await.expect("an answer");
    assert_eq!(guessed.status(), 429, "a right guess after the limit is not confirmed");
    let neighbour = from("198.51.100.2", "dev-key").send().await.expect("an answer");
    assert_eq!(neighbour.status(), 201, "another client is not held back");

    server.stop();
    let events = server.audit_events();
    let failures = events_of(&events, "AuthenticationAttempt", "Failure");
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0]["ip_address"], "198.51.100.1");
    assert_eq!(failures[0]["details"]["attempts"], FAILURES_PER_ADDRESS + 1);
    assert_eq!(failures[0]["details"]["refused"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_forwarded_for_header_does_not_escape_the_limit() {
    let server = Server::start();
    let client = client();
    let mut statuses = Vec::new();
    for attempt in 0..(FAILURES_PER_ADDRESS + 5) {
        let response = client
            .get(server.url("/v1/sessions"))
            .header("x-forwarded-for", format!("192.0.2.{attempt}"))
            .bearer_auth("guess")
            .send()
            .await
            .expect("an answer");
        statuses.push(response.status().as_u16());
    }
    assert_eq!(&statuses[FAILURES_PER_ADDRESS..], &[429; 5], "the socket's address is limited: {statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_every_event_records_the_clients_address() {
    let mut server = Launch::default().env("HARDENED_SERVER__TRUST_FORWARDED_FOR", "true").start();
    let client = client();
    let opened = client
        .post(server.url("/v1/sessions"))
        .header("x-forwarded-for", "203.0.113.7")
        .bearer_auth("dev-key")
        .send()
        .await
        .expect("an answer");
    assert_eq!(opened.status(), 201);
    let refused = client
        .post(server.url("/v1/sessions"))
        .header("x-forwarded-for", "203.0.113.8")
        .bearer_auth("wrong")
        .send()
        .await
        .expect("an answer");
    assert_eq!(refused.status(), 401);

    server.stop();
    let events = server.audit_events();
    let success = events_of(&events, "AuthenticationAttempt", "Success");
    assert_eq!(success.len(), 1);
    assert_eq!(success[0]["ip_address"], "203.0.113.7", "the client, not the proxy");
    let start = events_of(&events, "SessionStart", "Success");
    assert_eq!(start[0]["ip_address"], "203.0.113.7");
    let failure = events_of(&events, "AuthenticationAttempt", "Failure");
    assert_eq!(failure[0]["ip_address"], "203.0.113.8");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bearer_scheme_is_matched_in_any_case_and_another_scheme_does_not_hide_x_api_key() {
    let server = Server::start();
    let client = client();
    for header in ["Bearer dev-key", "bearer dev-key", "BEARER dev-key", "Bearer   dev-key"] {
        let response =
            client.post(server.url("/v1/sessions")).header("authorization", header).send().await.expect("an answer");
        assert_eq!(response.status(), 201, "Authorization: {header}");
    }
    let behind_basic = client
        .post(server.url("/v1/sessions"))
        .header("authorization", "Basic cHJveHk6c2VjcmV0")
        .header("x-api-key", "dev-key")
        .send()
        .await
        .expect("an answer");
    assert_eq!(behind_basic.status(), 201, "a proxy's Basic credentials do not hide the API key");
    let no_token =
        client.post(server.url("/v1/sessions")).header("authorization", "Bearer").send().await.expect("an answer");
    assert_eq!(no_token.status(), 401);
}

async fn call(server: &Server, method: reqwest::Method, path: &str, key: &str, body: Option<&str>) -> StatusCode {
    let mut request = client().request(method, server.url(path)).bearer_auth(key);
    if let Some(body) = body {
        request = request.header("content-type", "application/json").body(body.to_owned());
    }
    request.send().await.expect("an answer").status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_authorization_decision_is_audited_and_made_before_the_body_is_read() {
    let mut server = Server::start();
    let theirs = server.open_session("dev-key").await;
    let session = format!("/v1/sessions/{theirs}");
    let messages = format!("{session}/messages");
    let get = reqwest::Method::GET;
    let put = reqwest::Method::PUT;
    let post = reqwest::Method::POST;

    assert_eq!(call(&server, get.clone(), &session, "reader-key", None).await, 404, "another key's session");
    assert_eq!(call(&server, post, &messages, "reader-key", Some(r#"{"content": "hi"}"#)).await, 404);
    assert_eq!(call(&server, get.clone(), "/v1/admin/faults", "reader-key", None).await, 403, "faults are admin's");
    assert_eq!(
        call(&server, put.clone(), "/v1/admin/faults", "reader-key", Some("{\"nope")).await,
        403,
        "checked first"
    );
    assert_eq!(call(&server, get.clone(), "/v1/admin/faults", "dev-key", None).await, 200);
    assert_eq!(call(&server, put, "/v1/admin/faults", "dev-key", Some("{\"nope")).await, 400, "then parsed");
    assert_eq!(call(&server, get, &session, "dev-key", None).await, 200);

    server.stop();
    let events = server.audit_events();
    let denied = events_of(&events, "AuthorizationCheck", "Denied");
    let denied_on = |resource: &str| {
        denied.iter().filter(|event| event["resource"] == resource && event["user_id"] == "reader").count()
    };
    assert_eq!(denied_on("session"), 2, "the read and the message: {denied:?}");
    assert!(
        denied
            .iter()
            .filter(|event| event["resource"] == "session")
            .all(|event| event["session_id"] == theirs.as_str())
    );
    assert_eq!(denied_on("faults"), 2, "the read and the malformed change: {denied:?}");
    let granted = events_of(&events, "AuthorizationCheck", "Success");
    let granted_on = |resource: &str| {
        granted.iter().filter(|event| event["resource"] == resource && event["user_id"] == "developer").count()
    };
    assert_eq!(granted_on("faults"), 2, "{granted:?}");
    assert_eq!(granted_on("session"), 1, "{granted:?}");
}

#[test]
fn two_keys_with_the_same_secret_are_refused_naming_both_without_the_secret() {
    let output = Launch::default().env("AGENT_API_KEYS", "twin=dev-key").run(&["config", "check"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("developer") && error.contains("twin"), "{error}");
    assert!(!error.contains("dev-key"), "the secret is not printed: {error}");
}

#[test]
fn in_production_the_embedded_development_keys_stop_the_server() {
    let exit = Launch::default()
        .env("AGENT_ENV", "production")
        .start_expecting_exit(Duration::from_secs(10))
        .expect("the server refuses to start");
    assert_eq!(exit.0.code(), Some(2));
    assert!(exit.1.contains("AGENT_ENV=production") && exit.1.contains("developer"), "{}", exit.1);
    assert!(!exit.1.contains("dev-key"), "the secret is not printed: {}", exit.1);

    let unknown = Launch::default().env("AGENT_ENV", "prod").run(&["config", "check"]);
    assert_eq!(unknown.status.code(), Some(2));
    let error = String::from_utf8_lossy(&unknown.stderr);
    assert!(error.contains("AGENT_ENV") && error.contains("\"development\", \"production\""), "{error}");

    let production_set = concat!(env!("CARGO_MANIFEST_DIR"), "/config/production");
    let deployed = Launch::default()
        .env("AGENT_ENV", "production")
        .env("AGENT_OPERATOR_KEY", "a-key-of-the-deployment")
        .run(&["--config", production_set, "config", "check"]);
    assert!(deployed.status.success(), "{}", String::from_utf8_lossy(&deployed.stderr));
}

#[test]
fn configuration_output_never_holds_a_secret() {
    let output = Launch::default()
        .env("AGENT_API_KEYS", "ops=planted-secret-4711")
        .env("AGENT_ENV", "development")
        .run(&["config", "check"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(!text.contains("planted-secret-4711"), "{text}");
}
