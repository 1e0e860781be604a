//! A handler that panics, over a real loopback server: the client is answered 500 on a connection that
//! goes on serving, the answer is counted in the request metrics, and the panic is audited as an `Error`
//! event with the request's actor; with or without a `RequestLayer`.

use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use hardened::audit::{AuditEvent, AuditOutcome, Auditor, EventType, MemorySink};
use hardened::http::{RequestLayer, Server};
use hardened_tests::sample;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

const PATIENCE: Duration = Duration::from_secs(5);

/// The process-wide audit pipeline of this binary, into memory.
fn audit_sink() -> &'static MemorySink {
    static SINK: OnceLock<MemorySink> = OnceLock::new();
    SINK.get_or_init(|| {
        let sink = MemorySink::new();
        let spill = std::env::temp_dir().join(format!("hardened-http-panics-{}", std::process::id()));
        let auditor = Auditor::builder().sink(sink.clone()).spill_dir(spill).start().expect("the pipeline starts");
        hardened::audit::install(auditor).expect("the first pipeline installed");
        sink
    })
}

async fn serve(app: Router) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let address = listener.local_addr().expect("a bound address");
    tokio::spawn(Server::new(app).run(listener));
    address
}

/// Sends `GET path` on `stream` and reads one answer's status line and body (answers here are short and
/// carry a `content-length`).
async fn get_on(stream: &mut TcpStream, path: &str) -> (String, String) {
    stream.write_all(format!("GET {path} HTTP/1.1\r\nhost: localhost\r\n\r\n").as_bytes()).await.expect("sent");
    let read = async {
        let mut bytes = Vec::new();
        let mut byte = [0_u8; 1];
        while !bytes.ends_with(b"\r\n\r\n") {
            let read = stream.read(&mut byte).await.expect("readable");
            assert!(read > 0, "the connection closed after {:?}", String::from_utf8_lossy(&bytes));
            bytes.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&bytes).into_owned();
        let length: usize = head
            .lines()
            .filter_map(|line| line.split_once(':'))
            .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, value)| value.trim().parse().expect("a length"));
        let mut body = vec![0_u8; length];
        stream.read_exact(&mut body).await.expect("the body");
        (head.lines().next().unwrap_or_default().to_owned(), String::from_utf8_lossy(&body).into_owned())
    };
    tokio::time::timeout(PATIENCE, read).await.expect("an answer within the patience")
}

async fn panics() -> &'static str {
    panic!("the handler failed an assertion about secret-7731")
}

async fn audited_panics(resource: &str) -> Vec<AuditEvent> {
    hardened::audit::flush().await.expect("every event is written");
    audit_sink()
        .events()
        .into_iter()
        .map(|sealed| sealed.event().clone())
        .filter(|event| event.resource.as_deref() == Some(resource))
        .collect()
}

#[tokio::test]
async fn a_panicking_handler_is_answered_500_counted_and_audited_and_the_connection_serves_on() {
    audit_sink();
    let app = Router::new()
        .route("/panics/boom", get(panics))
        .route("/panics/fine", get(|| async { "fine" }))
        .layer(RequestLayer::new());
    let address = serve(app).await;
    let before =
        sample("hardened_http_requests_total", &[("method", "GET"), ("route", "/panics/boom"), ("status", "500")]);

    let mut stream = TcpStream::connect(address).await.expect("a connection");
    let (status, body) = get_on(&mut stream, "/panics/boom").await;
    assert_eq!(status, "HTTP/1.1 500 Internal Server Error");
    assert!(!body.contains("secret-7731"), "the panic's message is not sent to the client: {body:?}");
    let (status, body) = get_on(&mut stream, "/panics/fine").await;
    assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 200 OK", "fine"), "the same connection serves on");

    assert_eq!(
        sample("hardened_http_requests_total", &[("method", "GET"), ("route", "/panics/boom"), ("status", "500")]),
        Some(before.unwrap_or(0) + 1),
        "the panic is counted as a 500"
    );
    let events = audited_panics("GET /panics/boom").await;
    let [event] = events.as_slice() else { panic!("one event for the panic, found {events:#?}") };
    assert_eq!(event.event_type, EventType::Error);
    assert_eq!(event.outcome, AuditOutcome::Failure);
    assert_eq!(event.details.get("call_outcome"), Some(&"panic".into()));
    assert_eq!(event.ip_address, Some([127, 0, 0, 1].into()), "the request's actor");
    assert!(
        !serde_json::to_string(event).expect("serializable").contains("secret-7731"),
        "the panic's message is not audited"
    );
}

#[tokio::test]
async fn without_a_request_layer_the_server_answers_500_and_audits() {
    audit_sink();
    let app = Router::new().route("/panics/bare", get(panics));
    let address = serve(app).await;

    let mut stream = TcpStream::connect(address).await.expect("a connection");
    let (status, _) = get_on(&mut stream, "/panics/bare").await;
    assert_eq!(status, "HTTP/1.1 500 Internal Server Error");

    let events = audited_panics("GET /panics/bare").await;
    let [event] = events.as_slice() else { panic!("one event for the panic, found {events:#?}") };
    assert_eq!(event.event_type, EventType::Error);
    assert_eq!(event.outcome, AuditOutcome::Failure);
}
