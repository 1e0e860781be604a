//! Attacks on the agent's tools, each performed against the real `agent-server` over HTTP: a calculator
//! expression that once overflowed the stack, fetches that redirect or resolve to internal addresses,
//! secrets in URLs of tool errors, and a memory that grew without bound.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use support::{Server, agent_toml, serve_on};

/// `1^1^...^1` with `carets` carets.
fn power_tower(carets: usize) -> String {
    let mut expression = "1^".repeat(carets);
    expression.push('1');
    expression
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_30000_caret_expression_from_the_reader_key_is_refused_and_the_server_stays_up() {
    let mut server = Server::start();
    let session = server.open_session("reader-key").await;
    // The whole attack is over the message limit: refused before the agent sees it.
    let attack = server.say("reader-key", &session, &power_tower(30_000)).await;
    let (status, reply) = attack.expect("the server answers the attack instead of crashing");
    assert_eq!(status, 413, "{reply}");
    assert!(server.is_running(), "the process is up");

    // Within the message limit, the tool's own input bound refuses it before the parser.
    let (status, reply) = server.say("reader-key", &session, &power_tower(5_000)).await.expect("an answer");
    assert_eq!(status, 200, "{reply}");
    let outcome = &reply["tools"][0];
    assert_eq!(outcome["tool"], "calculator");
    assert_eq!(outcome["ok"], false, "{outcome}");
    let output = outcome["output"].as_str().expect("an error text");
    assert!(output.contains("bytes") && output.contains("tools.max_input_bytes"), "{output}");
    assert!(server.is_running(), "the process is up");

    let next = server.tool_outcome("reader-key", &session, "what is 2 + 3 * 4?").await;
    assert_eq!(next["output"], "14", "the next request works: {next}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_expressions_within_a_raised_input_limit_reach_the_parser_and_are_answered() {
    let mut server = Server::with_agent_toml(
        &agent_toml(
            "[tools]\nmax_input_bytes = 1048576\n\n\
             [sessions]\nmax_message_bytes = 1048576\nmax_transcript_bytes = 16777216\n",
        ),
        &[],
    );
    let session = server.open_session("reader-key").await;

    let tower = server.tool_outcome("reader-key", &session, &power_tower(30_000)).await;
    assert_eq!((&tower["ok"], &tower["output"]), (&true.into(), &"1".into()), "{tower}");

    let nested = format!("{}1{}+1", "(".repeat(30_000), ")".repeat(30_000));
    let refused = server.tool_outcome("reader-key", &session, &nested).await;
    assert_eq!(refused["ok"], false);
    assert!(refused["output"].as_str().is_some_and(|output| output.contains("nested deeper than")), "{refused}");

    let negations = format!("{}2 * 1", "-".repeat(30_000));
    let negated = server.tool_outcome("reader-key", &session, &negations).await;
    assert_eq!(negated["output"], "2", "{negated}");

    assert!(server.is_running());
    let next = server.tool_outcome("reader-key", &session, "what is 2 ^ 10?").await;
    assert_eq!(next["output"], "1024");
}

/// A loopback server that counts the requests it gets, answering `body` to each.
async fn counted_server(ip: &str, body: &'static str) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    let router = axum::Router::new().fallback(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async move { body }
    });
    (serve_on(ip, router).await, hits)
}

/// A loopback server that redirects `/hop/{port}/{host}` to `http://{host}:{port}/secret` and `/loop` to
/// itself, and answers `/page`.
async fn redirecting_server() -> std::net::SocketAddr {
    let router = axum::Router::new()
        .route(
            "/hop/{port}/{host}",
            get(|axum::extract::Path((port, host)): axum::extract::Path<(u16, String)>| async move {
                (StatusCode::FOUND, [(header::LOCATION, format!("http://{host}:{port}/secret"))]).into_response()
            }),
        )
        .route("/page", get(|| async { "a public page" }))
        .route("/loop", get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/loop")]).into_response() }));
    serve_on("127.0.0.1", router).await
}

/// Loopback by its address only: listing an address on the allow-list lets the tool reach it although it
/// is private.
const FETCH_LOOPBACK_BY_ADDRESS: &str = "[fetch]\nallow_hosts = [\"127.0.0.1\"]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_from_an_allowed_host_to_an_unlisted_one_is_not_followed() {
    let (internal, internal_hits) = counted_server("127.0.0.1", "internal secret").await;
    let public = redirecting_server().await;
    let server = Server::with_agent_toml(&agent_toml(FETCH_LOOPBACK_BY_ADDRESS), &[]);
    let session = server.open_session("dev-key").await;

    // `localhost` is the same machine, but not a host on the allow-list.
    let attack = format!("fetch http://{public}/hop/{}/localhost", internal.port());
    let outcome = server.tool_outcome("dev-key", &session, &attack).await;
    assert_eq!(outcome["ok"], false, "{outcome}");
    let output = outcome["output"].as_str().expect("an error text");
    assert!(!output.contains("internal secret"), "{output}");
    assert!(output.contains("localhost is not on the fetch allow-list"), "{output}");
    assert_eq!(internal_hits.load(Ordering::SeqCst), 0, "the internal server got no request");

    // A redirect to an allowed host is followed.
    let hop = format!("fetch http://{public}/hop/{}/127.0.0.1", internal.port());
    let followed = server.tool_outcome("dev-key", &session, &hop).await;
    assert_eq!((&followed["ok"], &followed["output"]), (&true.into(), &"internal secret".into()), "{followed}");

    let looping = server.tool_outcome("dev-key", &session, &format!("fetch http://{public}/loop")).await;
    assert_eq!(looping["ok"], false, "{looping}");
    assert_eq!(looping["output"], "more than 5 redirects; allowed: at most 5 (fetch.max_redirects)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_resolving_to_a_private_address_is_refused_unless_the_address_is_listed() {
    let (internal, hits) = counted_server("127.0.0.1", "internal secret").await;
    let strict = Server::with_agent_toml(&agent_toml("[fetch]\nallow_hosts = [\"localhost\"]\n"), &[]);
    let session = strict.open_session("dev-key").await;
    let attack = format!("fetch http://localhost:{}/secret", internal.port());
    let outcome = strict.tool_outcome("dev-key", &session, &attack).await;
    assert_eq!(outcome["ok"], false, "{outcome}");
    let output = outcome["output"].as_str().expect("an error text");
    assert!(output.contains("loopback") && output.contains("fetch.allow_private"), "{output}");
    assert_eq!(hits.load(Ordering::SeqCst), 0, "no connection reached the internal server");

    let listed = Server::with_agent_toml(
        &agent_toml("[fetch]\nallow_hosts = [\"localhost\"]\nallow_private = [\"127.0.0.1\", \"::1\"]\n"),
        &[],
    );
    let session = listed.open_session("dev-key").await;
    let outcome = listed.tool_outcome("dev-key", &session, &attack).await;
    assert_eq!((&outcome["ok"], &outcome["output"]), (&true.into(), &"internal secret".into()), "{outcome}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_development_demo_still_fetches_from_loopback() {
    let (page, hits) = counted_server("127.0.0.1", "demo page").await;
    let server = Server::start();
    let session = server.open_session("dev-key").await;
    for url in [format!("http://127.0.0.1:{}/", page.port()), format!("http://localhost:{}/", page.port())] {
        let outcome = server.tool_outcome("dev-key", &session, &format!("fetch {url}")).await;
        assert_eq!((&outcome["ok"], &outcome["output"]), (&true.into(), &"demo page".into()), "{url}: {outcome}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_in_a_fetched_url_stay_out_of_tool_errors_and_the_audit_trail() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a port").local_addr().expect("an address");
    drop(std::net::TcpListener::bind(closed));
    let mut server = Server::start();
    let session = server.open_session("dev-key").await;
    let url = format!("http://alice:hunter2@127.0.0.1:{}/private?token=planted-secret#frag", closed.port());
    let outcome = server.tool_outcome("dev-key", &session, &format!("fetch {url}")).await;
    assert_eq!(outcome["ok"], false, "{outcome}");
    let output = outcome["output"].as_str().expect("an error text");
    assert!(!output.contains("planted-secret") && !output.contains("hunter2"), "{output}");
    assert!(output.contains(&format!("127.0.0.1:{}/private", closed.port())), "the URL stays useful: {output}");

    assert!(server.stop().success());
    let audit = server.audit_text();
    assert!(audit.contains("ToolExecution"), "the fetch was audited");
    assert!(!audit.contains("planted-secret") && !audit.contains("hunter2"), "{audit}");
    let log = server.log();
    assert!(!log.contains("planted-secret") && !log.contains("hunter2"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calculator_expressions_and_memory_keys_stay_out_of_the_log_and_the_audit_trail() {
    let mut server = Server::with_env(&[("HARDENED_TELEMETRY__LOG_FILTER", "trace")]);
    let session = server.open_session("dev-key").await;
    let sum = server.tool_outcome("dev-key", &session, "what is 918273 + 1?").await;
    assert_eq!(sum["output"], "918274");
    let set = server.tool_outcome("dev-key", &session, "remember plantedkey is plantedvalue").await;
    assert_eq!(set["ok"], true);
    let recalled = server.tool_outcome("dev-key", &session, "recall plantedkey").await;
    assert_eq!(recalled["output"], "plantedvalue");
    let missing = server.tool_outcome("dev-key", &session, "recall otherplantedkey").await;
    assert_eq!(missing["ok"], false);
    assert!(server.stop().success());

    let log = server.log();
    for planted in ["918273", "plantedkey", "plantedvalue"] {
        assert!(!log.contains(planted), "{planted} is in the log: {log}");
    }
    let audit = server.audit_text();
    for planted in ["918273", "plantedkey", "plantedvalue"] {
        assert!(!audit.contains(planted), "{planted} is in the audit trail");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_tool_refuses_entries_beyond_its_limits() {
    let server = Server::start();
    let session = server.open_session("dev-key").await;

    let value = "v".repeat(5_000);
    let outcome = server.tool_outcome("dev-key", &session, &format!("remember big is {value}")).await;
    assert_eq!(outcome["ok"], false, "a 5,000-byte value is refused");
    assert!(outcome["output"].as_str().is_some_and(|text| text.contains("tools.memory.max_value_bytes")), "{outcome}");

    let key = "k".repeat(200);
    let outcome = server.tool_outcome("dev-key", &session, &format!("remember {key} is v")).await;
    assert_eq!(outcome["ok"], false, "a 200-byte key is refused");
    assert!(outcome["output"].as_str().is_some_and(|text| text.contains("tools.memory.max_key_bytes")), "{outcome}");

    for n in 0..100 {
        let outcome = server.tool_outcome("dev-key", &session, &format!("remember key{n} is value {n}")).await;
        assert_eq!(outcome["ok"], true, "entry {n}: {outcome}");
    }
    let outcome = server.tool_outcome("dev-key", &session, "remember onemore is value").await;
    assert_eq!(outcome["ok"], false, "the 101st entry is refused");
    assert!(outcome["output"].as_str().is_some_and(|text| text.contains("tools.memory.max_entries")), "{outcome}");
    let outcome = server.tool_outcome("dev-key", &session, "remember key7 is replaced").await;
    assert_eq!(outcome["ok"], true, "a remembered key may be replaced at the limit: {outcome}");
    let outcome = server.tool_outcome("dev-key", &session, "recall key7").await;
    assert_eq!(outcome["output"], "replaced");
}
