//! `hardened::http::Server` against slow and greedy clients, over real loopback sockets: a client that
//! never finishes its headers (slowloris) is disconnected, connections beyond the cap are not served at
//! once, a body over the limit is refused with 413, and a request past the request timeout is answered
//! 503 (a slow handler) or 408 (a client slow to send its body), and counted with that status.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::{get, post};
use hardened::http::{RequestLayer, Server, ServerLimits};
use hardened_tests::sample;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How long any one wait may take before the test gives up: far longer than any limit configured here,
/// so that a server holding to its limits is never this slow, and one that does not hold to them is
/// caught without waiting for the 30 s and more of a default.
const PATIENCE: Duration = Duration::from_secs(5);

/// A limit short enough for a test, long enough for a loaded machine to answer a request under it.
const SHORT: Duration = Duration::from_millis(200);

/// Serves `app` with `limits` on a loopback port; returns its address.
async fn serve(app: Router, limits: ServerLimits) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let address = listener.local_addr().expect("a bound address");
    tokio::spawn(Server::new(app).limits(limits).run(listener));
    address
}

/// Reads what the server sends until it closes the connection; an error when it keeps it open past
/// [`PATIENCE`]. A reset is a close too.
async fn read_until_closed(stream: &mut TcpStream) -> io::Result<String> {
    let mut bytes = Vec::new();
    let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut bytes))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the server keeps the connection open"))?;
    match read {
        Ok(_) => {}
        Err(error) if error.kind() == io::ErrorKind::ConnectionReset => {}
        Err(error) => return Err(error),
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The status line of one response read from `stream`, whose head must arrive within [`PATIENCE`].
async fn status_line(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let read_head = async {
        let mut byte = [0_u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            let read = stream.read(&mut byte).await.expect("the response is readable");
            assert!(read > 0, "the connection closed after {:?}", String::from_utf8_lossy(&head));
            head.push(byte[0]);
        }
    };
    tokio::time::timeout(PATIENCE, read_head).await.expect("a response within the patience");
    String::from_utf8_lossy(&head).lines().next().unwrap_or_default().to_owned()
}

fn requests(route: &str, status: &str) -> u64 {
    sample("hardened_http_requests_total", &[("method", "GET"), ("route", route), ("status", status)]).unwrap_or(0)
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let handled = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&handled);
    let app = Router::new().route(
        "/slowloris",
        get(move || async move {
            counted.fetch_add(1, Ordering::SeqCst);
            "served"
        }),
    );
    let address = serve(app, ServerLimits { header_read_timeout: SHORT, ..ServerLimits::default() }).await;

    let mut stream = TcpStream::connect(address).await.expect("a connection");
    // Half a head, then nothing: the request line and the start of a header that never ends.
    stream.write_all(b"GET /slowloris HTTP/1.1\r\nhost: localhost\r\nx-slow: a").await.expect("sent");

    let answer = read_until_closed(&mut stream)
        .await
        .expect("the server closes a connection whose headers do not come within the header-read timeout");
    assert!(!answer.contains("served"), "the request was never handled: {answer:?}");
    assert_eq!(handled.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_header_read_timeout() {
    let app = Router::new().route("/idle", get(|| async { "served" }));
    let address = serve(app, ServerLimits { header_read_timeout: SHORT, ..ServerLimits::default() }).await;

    let mut stream = TcpStream::connect(address).await.expect("a connection");
    stream.write_all(b"GET /idle HTTP/1.1\r\nhost: localhost\r\n\r\n").await.expect("sent");
    assert_eq!(status_line(&mut stream).await, "HTTP/1.1 200 OK");
    // Kept alive, and then never used again.
    read_until_closed(&mut stream).await.expect("the server closes the idle connection");
}

/// Handlers that hold their request until released, counting how many run at once.
#[derive(Clone, Default)]
struct Holding {
    started: Arc<AtomicUsize>,
    running: Arc<AtomicUsize>,
    most_running: Arc<AtomicUsize>,
    release: Arc<watch::Sender<bool>>,
}

async fn hold(State(holding): State<Holding>) -> &'static str {
    holding.started.fetch_add(1, Ordering::SeqCst);
    let running = holding.running.fetch_add(1, Ordering::SeqCst) + 1;
    holding.most_running.fetch_max(running, Ordering::SeqCst);
    let _ = holding.release.subscribe().wait_for(|released| *released).await;
    holding.running.fetch_sub(1, Ordering::SeqCst);
    "released"
}

async fn send_hold(address: std::net::SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(address).await.expect("the kernel takes the connection into its backlog");
    stream.write_all(b"GET /hold HTTP/1.1\r\nhost: localhost\r\n\r\n").await.expect("sent");
    stream
}

async fn until(condition: impl Fn() -> bool) {
    tokio::time::timeout(PATIENCE, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the condition within the patience");
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let holding = Holding::default();
    let app = Router::new().route("/hold", get(hold)).with_state(holding.clone());
    let address = serve(app, ServerLimits { max_connections: 2, ..ServerLimits::default() }).await;

    let mut first = send_hold(address).await;
    let mut second = send_hold(address).await;
    until(|| holding.started.load(Ordering::SeqCst) == 2).await;
    let mut third = send_hold(address).await;
    // Time enough for a server without a cap to accept the third connection and start its request.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(holding.started.load(Ordering::SeqCst), 2, "the third connection is not served while two are open");

    holding.release.send_replace(true);
    assert_eq!(status_line(&mut first).await, "HTTP/1.1 200 OK");
    assert_eq!(status_line(&mut second).await, "HTTP/1.1 200 OK");
    assert_eq!(holding.started.load(Ordering::SeqCst), 2, "kept alive, both connections still hold their places");
    drop(first);
    assert_eq!(status_line(&mut third).await, "HTTP/1.1 200 OK", "served once a place is free");
    assert_eq!(holding.most_running.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413() {
    let app = Router::new().route("/upload", post(|body: Bytes| async move { body.len().to_string() }));
    let address = serve(app, ServerLimits { body_limit: 1024, ..ServerLimits::default() }).await;
    let client = reqwest::Client::new();
    let url = format!("http://{address}/upload");

    let within = client.post(&url).body(vec![b'a'; 1024]).send().await.expect("an answer");
    assert_eq!(within.status(), 200);
    assert_eq!(within.text().await.expect("a body"), "1024");

    let declared = client.post(&url).body(vec![b'a'; 1025]).send().await.expect("an answer");
    assert_eq!(declared.status(), 413, "a Content-Length over the limit");

    // Without a length: the body is cut while it is read.
    let mut stream = TcpStream::connect(address).await.expect("a connection");
    let chunk = "a".repeat(2048);
    let request = format!(
        "POST /upload HTTP/1.1\r\nhost: localhost\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    stream.write_all(request.as_bytes()).await.expect("sent");
    assert_eq!(status_line(&mut stream).await, "HTTP/1.1 413 Payload Too Large", "a chunked body over the limit");
}

#[tokio::test]
async fn a_slow_handler_is_answered_503_at_the_request_timeout_and_counted() {
    let app = Router::new().route("/limits/slow", get(std::future::pending::<&'static str>)).layer(RequestLayer::new());
    let address = serve(app, ServerLimits { request_timeout: SHORT, ..ServerLimits::default() }).await;
    let before = requests("/limits/slow", "503");

    let client = reqwest::Client::builder().timeout(PATIENCE).build().expect("a client");
    let response = client.get(format!("http://{address}/limits/slow")).send().await.expect("an answer in time");
    assert_eq!(response.status(), 503);
    assert_eq!(requests("/limits/slow", "503"), before + 1, "the request metrics count the answer the client got");
}

#[tokio::test]
async fn a_client_slow_to_send_its_body_is_answered_408_and_the_connection_closed() {
    let app = Router::new().route("/upload", post(|body: Bytes| async move { body.len().to_string() }));
    let address = serve(app, ServerLimits { request_timeout: SHORT, ..ServerLimits::default() }).await;

    let mut stream = TcpStream::connect(address).await.expect("a connection");
    // Ten bytes promised, five sent.
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nhost: localhost\r\ncontent-length: 10\r\n\r\nhello")
        .await
        .expect("sent");
    let answer = read_until_closed(&mut stream).await.expect("an answer, then the connection closed");
    assert!(answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{answer:?}");
}
