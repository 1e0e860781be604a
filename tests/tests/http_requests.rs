//! The request layer over a real loopback server: series by route template, `unmatched` for requests no
//! route takes, method and status labels, the duration histogram, requests in flight, and the audit
//! actor of each request.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use hardened::audit::{AuditContext, AuditEvent, Auditor, EventType, MemorySink};
use hardened::hardened;
use hardened::http::RequestLayer;
use hardened_tests::sample;
use tokio::sync::{Mutex, Notify, mpsc};

/// Tests here read the process-wide in-flight count, so they take turns.
static SERIAL: Mutex<()> = Mutex::const_new(());

/// Serves `app`, with the peer address of each connection, on a loopback port; returns its base URL.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let base = format!("http://{}", listener.local_addr().expect("a bound address"));
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

fn requests(method: &str, route: &str, status: &str) -> u64 {
    sample("hardened_http_requests_total", &[("method", method), ("route", route), ("status", status)]).unwrap_or(0)
}

/// Whether any series of hardened's registry has a label whose value is `value`.
fn any_label_is(value: &str) -> bool {
    hardened::metrics::registry()
        .gather()
        .iter()
        .flat_map(|family| family.get_metric().iter())
        .any(|metric| metric.get_label().iter().any(|label| label.value() == value))
}

#[tokio::test]
async fn requests_are_counted_by_route_template_never_by_raw_path() {
    let _turn = SERIAL.lock().await;
    let app = Router::new().route("/t1/users/{id}", get(|| async { "ada" })).layer(RequestLayer::new());
    let base = serve(app).await;
    for id in [1, 2, 3] {
        let response = reqwest::get(format!("{base}/t1/users/{id}")).await.expect("an answer");
        assert_eq!(response.status(), 200);
    }

    assert_eq!(requests("GET", "/t1/users/{id}", "200"), 3, "three ids, one series");
    assert_eq!(
        sample("hardened_http_request_duration_seconds", &[("method", "GET"), ("route", "/t1/users/{id}")]),
        Some(3),
        "one observation per request"
    );
    assert!(!any_label_is("/t1/users/1") && !any_label_is("/t1/users/2"), "raw paths never become labels");
}

#[tokio::test]
async fn a_request_no_route_takes_is_labelled_unmatched() {
    let _turn = SERIAL.lock().await;
    let app = Router::new().route("/t2/known", get(|| async { "here" })).layer(RequestLayer::new());
    let base = serve(app).await;
    let before = requests("GET", hardened::http::UNMATCHED_ROUTE, "404");

    let response = reqwest::get(format!("{base}/t2/no/such/page-8472")).await.expect("an answer");
    assert_eq!(response.status(), 404);
    assert_eq!(requests("GET", "unmatched", "404"), before + 1);
    assert!(!any_label_is("/t2/no/such/page-8472"));
}

#[tokio::test]
async fn method_and_status_labels_follow_each_answer() {
    let _turn = SERIAL.lock().await;
    let app = Router::new()
        .route("/t3/items", post(|| async { StatusCode::CREATED }).get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .layer(RequestLayer::new());
    let base = serve(app).await;
    let client = reqwest::Client::new();

    client.post(format!("{base}/t3/items")).send().await.expect("an answer");
    client.post(format!("{base}/t3/items")).send().await.expect("an answer");
    client.get(format!("{base}/t3/items")).send().await.expect("an answer");
    let purge = reqwest::Method::from_bytes(b"PURGE").expect("a valid method");
    let refused = client.request(purge, format!("{base}/t3/items")).send().await.expect("an answer");
    assert_eq!(refused.status(), 405);

    assert_eq!(requests("POST", "/t3/items", "201"), 2);
    assert_eq!(requests("GET", "/t3/items", "500"), 1);
    assert_eq!(requests("_OTHER", "/t3/items", "405"), 1, "a non-standard method is `_OTHER`");
    assert!(!any_label_is("PURGE"));
}

#[derive(Clone)]
struct Hold {
    entered: mpsc::UnboundedSender<()>,
    release: Arc<Notify>,
}

async fn held(State(hold): State<Hold>) -> &'static str {
    let _ = hold.entered.send(());
    hold.release.notified().await;
    "released"
}

#[tokio::test]
async fn a_request_is_in_flight_from_its_arrival_until_its_answer() {
    let _turn = SERIAL.lock().await;
    let (entered, mut arrivals) = mpsc::unbounded_channel();
    let release = Arc::new(Notify::new());
    let hold = Hold { entered, release: Arc::clone(&release) };
    let app = Router::new().route("/t4/held", get(held)).with_state(hold).layer(RequestLayer::new());
    let base = serve(app).await;
    let before = hardened::http::requests_in_flight();

    let request = tokio::spawn(reqwest::get(format!("{base}/t4/held")));
    arrivals.recv().await.expect("the handler is running");
    assert_eq!(hardened::http::requests_in_flight(), before + 1);

    release.notify_one();
    let response = request.await.expect("the request task ends").expect("an answer");
    assert_eq!(response.text().await.expect("a body"), "released");
    assert_eq!(hardened::http::requests_in_flight(), before);
    assert_eq!(
        sample("hardened_http_requests_in_flight", &[]),
        Some(before),
        "the gauge in /metrics reads the same count"
    );
}

/// The process-wide audit pipeline of this binary, into memory.
fn audit_sink() -> &'static MemorySink {
    static SINK: OnceLock<MemorySink> = OnceLock::new();
    SINK.get_or_init(|| {
        let sink = MemorySink::new();
        let spill = std::env::temp_dir().join(format!("hardened-http-requests-{}", std::process::id()));
        let auditor = Auditor::builder().sink(sink.clone()).spill_dir(spill).start().expect("the pipeline starts");
        hardened::audit::install(auditor).expect("the first pipeline installed");
        sink
    })
}

#[derive(Debug, thiserror::Error)]
#[error("refused: {0}")]
struct DeleteError(#[from] hardened::Rejected);

#[hardened(kind = "tool", audit)]
async fn delete_document_over_http(id: u32) -> Result<u32, DeleteError> {
    Ok(id)
}

/// Users and sessions from headers, as an authentication layer would have checked them.
fn actor_from_headers(parts: &axum::http::request::Parts) -> AuditContext {
    let header = |name: &str| parts.headers.get(name).and_then(|value| value.to_str().ok()).map(str::to_owned);
    AuditContext { user_id: header("x-user"), session_id: header("x-session"), ip_address: None }
}

#[tokio::test]
async fn an_audited_call_inside_a_handler_records_who_made_the_request() {
    let _turn = SERIAL.lock().await;
    audit_sink();
    let app = Router::new()
        .route(
            "/t5/documents/{id}",
            post(|| async {
                if delete_document_over_http(7).await.is_ok() {
                    StatusCode::NO_CONTENT
                } else {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            }),
        )
        .route(
            "/t5/emit",
            post(|| async {
                hardened::audit::emit(AuditEvent::new(EventType::ConfigurationChange).resource("t5-settings"));
                StatusCode::NO_CONTENT
            }),
        )
        .layer(RequestLayer::new().actor(actor_from_headers));
    let base = serve(app).await;
    let client = reqwest::Client::new();
    for path in ["/t5/documents/7", "/t5/emit"] {
        let response = client
            .post(format!("{base}{path}"))
            .header("x-user", "ada")
            .header("x-session", "s-42")
            .send()
            .await
            .expect("an answer");
        assert_eq!(response.status(), 204, "{path}");
    }

    hardened::audit::flush().await.expect("every event is written");
    let events: Vec<AuditEvent> = audit_sink().events().into_iter().map(|sealed| sealed.event().clone()).collect();
    for resource in ["delete_document_over_http", "t5-settings"] {
        let event = events
            .iter()
            .find(|event| event.resource.as_deref() == Some(resource))
            .unwrap_or_else(|| panic!("an event for {resource} in {events:?}"));
        assert_eq!(event.user_id.as_deref(), Some("ada"), "{resource}");
        assert_eq!(event.session_id.as_deref(), Some("s-42"), "{resource}");
        assert_eq!(event.ip_address, Some([127, 0, 0, 1].into()), "{resource}: the connection's peer");
    }
}

/// The actor the handler runs as, as text: `user@address`.
async fn whoami() -> String {
    let actor = hardened::audit::current_context().unwrap_or_default();
    let ip = actor.ip_address.map(|ip| ip.to_string()).unwrap_or_default();
    format!("{}@{ip}", actor.user_id.unwrap_or_default())
}

async fn whoami_behind(layer: RequestLayer, forwarded_for: Option<&str>) -> String {
    let base = serve(Router::new().route("/t6/whoami", get(whoami)).layer(layer)).await;
    let mut request = reqwest::Client::new().get(format!("{base}/t6/whoami"));
    if let Some(forwarded_for) = forwarded_for {
        request = request.header("x-forwarded-for", forwarded_for);
    }
    request.send().await.expect("an answer").text().await.expect("a body")
}

#[tokio::test]
async fn x_forwarded_for_names_the_client_only_when_its_proxies_are_trusted() {
    let _turn = SERIAL.lock().await;
    let chain = Some("203.0.113.9, 198.51.100.7");
    assert_eq!(whoami_behind(RequestLayer::new(), chain).await, "@127.0.0.1", "the header is ignored by default");
    assert_eq!(
        whoami_behind(RequestLayer::new().trust_forwarded_for(1), chain).await,
        "@198.51.100.7",
        "behind one proxy, the entry it appended"
    );
    assert_eq!(whoami_behind(RequestLayer::new().trust_forwarded_for(2), chain).await, "@203.0.113.9");
    assert_eq!(
        whoami_behind(RequestLayer::new().trust_forwarded_for(3), chain).await,
        "@127.0.0.1",
        "fewer entries than proxies: the header was not written by them, the peer is used"
    );
    assert_eq!(
        whoami_behind(RequestLayer::new().trust_forwarded_for(1), Some("198.51.100.7:4711")).await,
        "@198.51.100.7"
    );
    let with_actor = RequestLayer::new().actor(|_| AuditContext::user("ada")).trust_forwarded_for(1);
    assert_eq!(whoami_behind(with_actor, chain).await, "ada@198.51.100.7", "the actor and the address combine");
}
