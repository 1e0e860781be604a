//! `hardened::http::Server` at the moment it stops accepting, over real loopback sockets: a connection
//! waiting in the kernel's accept queue, and one accepted that has not sent its request yet, are both
//! answered, with `Connection: close`; only later connects are refused. The shutdown is once per process,
//! so this binary holds one test.

use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use hardened::http::Server;
use hardened::shutdown::{self, ShutdownConfig, ShutdownSummary};
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// How long any one wait may take before the test gives up; generous, since it only bounds a failure.
const PATIENCE: Duration = Duration::from_secs(30);

/// Connections waiting in the accept queue when the listener closes.
const QUEUED: usize = 8;

/// A server whose handler answers with the client's address, as axum's `ConnectInfo` sees it.
fn start(listener: TcpListener) -> JoinHandle<io::Result<ShutdownSummary>> {
    let app =
        Router::new().route("/peer", get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }));
    let config = ShutdownConfig { pre_stop_delay: Duration::ZERO, ..ShutdownConfig::default() };
    tokio::spawn(Server::new(app).shutdown(config).run(listener))
}

async fn bind() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let address = listener.local_addr().expect("a bound address");
    (listener, address)
}

/// Connects without yielding to the runtime: the test runs on its only thread, so no server accepts
/// before this returns.
fn connect(address: SocketAddr) -> std::net::TcpStream {
    std::net::TcpStream::connect(address).expect("the listener takes the connection into its queue")
}

fn send(stream: &mut std::net::TcpStream, extra_header: &str) -> io::Result<()> {
    write!(stream, "GET /peer HTTP/1.1\r\nhost: localhost\r\n{extra_header}\r\n")
}

#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status_line: String,
    connection: Option<String>,
    body: String,
}

/// Reads until the server closes the connection.
async fn answer(stream: std::net::TcpStream) -> io::Result<Answer> {
    stream.set_nonblocking(true)?;
    let mut stream = tokio::net::TcpStream::from_std(stream)?;
    let mut bytes = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut bytes))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no answer, and the connection stays open"))??;
    let text = String::from_utf8(bytes).map_err(io::Error::other)?;
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("the connection ended after {text:?}")));
    };
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default().to_owned();
    let connection = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("connection"))
        .map(|(_, value)| value.trim().to_owned());
    Ok(Answer { status_line, connection, body: body.to_owned() })
}

fn answered(peer: SocketAddr) -> Answer {
    Answer { status_line: "HTTP/1.1 200 OK".to_owned(), connection: Some("close".to_owned()), body: peer.to_string() }
}

fn refuses(address: SocketAddr) -> bool {
    std::net::TcpStream::connect(address).is_err_and(|error| error.kind() == io::ErrorKind::ConnectionRefused)
}

/// Yields until `address` refuses connections, up to [`PATIENCE`].
async fn until_refused(address: SocketAddr) {
    let started = Instant::now();
    while !refuses(address) {
        assert!(started.elapsed() < PATIENCE, "{address} still takes connections");
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn connections_queued_or_without_a_request_when_the_listener_closes_are_answered_then_refused() {
    let (listener, open_address) = bind().await;
    let open = start(listener);

    // Accepted before the shutdown, with no request yet. The server accepts in order, so once a
    // connection made after this one has been answered, this one has been accepted.
    let mut accepted = connect(open_address);
    let mut later = connect(open_address);
    send(&mut later, "connection: close\r\n").expect("the request is sent");
    let peer = later.local_addr().expect("a local address");
    // `Connection: close` here is hyper's echo of the client's.
    let before = answer(later).await.expect("answered before the shutdown");
    assert_eq!(before, answered(peer), "the handler sees the client's address through ConnectInfo");

    // Waiting in the accept queue when the listener closes: this server starts once closing has begun,
    // so it has accepted none of them before.
    let (listener, late_address) = bind().await;
    let queued: Vec<_> = (0..QUEUED).map(|_| connect(late_address)).collect();

    assert!(shutdown::begin(), "this test begins the shutdown");
    shutdown::closing().await;
    until_refused(open_address).await;
    let accepted_peer = accepted.local_addr().expect("a local address");
    let accepted_sent = send(&mut accepted, "");

    let late = start(listener);
    until_refused(late_address).await;
    let mut outcomes = vec![(accepted_peer, accepted_sent.map(|()| accepted))];
    for mut stream in queued {
        let peer = stream.local_addr().expect("a local address");
        outcomes.push((peer, send(&mut stream, "").map(|()| stream)));
    }

    let mut failures = Vec::new();
    for (peer, sent) in outcomes {
        let got = match sent {
            Ok(stream) => answer(stream).await,
            Err(error) => Err(error),
        };
        match got {
            Ok(got) if got == answered(peer) => {}
            Ok(got) => failures.push(format!("{peer}: {got:?}")),
            Err(error) => failures.push(format!("{peer}: {error} ({:?})", error.kind())),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} connections let in before the listeners closed were not answered: {failures:#?}",
        failures.len(),
        QUEUED + 1
    );

    for server in [open, late] {
        let summary = server.await.expect("the server task ends").expect("the server runs until the shutdown");
        assert!(summary.drained, "{summary}");
    }
    assert!(refuses(open_address) && refuses(late_address), "connects after the drain are refused");
}
