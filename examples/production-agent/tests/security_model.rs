//! An upstream model that answers an error with a huge body, against the real `agent-server` over HTTP:
//! the body is read only up to a bound and never reaches the client.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use support::{Server, serve_on};

const CHUNK: usize = 64 * 1024;
const CHUNKS: usize = 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_upstream_error_body_is_read_in_part_and_not_returned_to_the_client() {
    let produced = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&produced);
    let upstream = axum::Router::new().fallback(move || {
        let counter = Arc::clone(&counter);
        async move {
            // 64 MiB, made only as the reader asks for it.
            let chunks = futures::stream::iter((0..CHUNKS).map(move |index| {
                counter.fetch_add(CHUNK, Ordering::SeqCst);
                let byte = if index == 0 { b'U' } else { b'x' };
                let mut chunk = vec![byte; CHUNK];
                if index == 0 {
                    chunk[..20].copy_from_slice(b"UPSTREAM-ERROR-BODY:");
                }
                Ok::<_, std::convert::Infallible>(Bytes::from(chunk))
            }));
            (StatusCode::INTERNAL_SERVER_ERROR, Body::from_stream(chunks))
        }
    });
    let address = serve_on("127.0.0.1", upstream).await;
    let base_url = format!("http://{address}/v1");
    let mut server = Server::with_env(&[("OPENAI_BASE_URL", &base_url)]);
    let session = server.open_session("dev-key").await;

    let (status, reply) = server.say("dev-key", &session, "hello").await.expect("the server answers");
    assert_eq!(status, 502, "{reply}");
    assert_eq!(reply["error"], "the model answered 500 Internal Server Error");
    let read = produced.load(Ordering::SeqCst);
    assert!(read < 16 * 1024 * 1024, "{read} bytes of the 64 MiB body were produced for the reader");
    assert!(server.is_running());

    assert!(server.stop().success());
    let log = server.log();
    assert!(log.contains("UPSTREAM-ERROR-BODY:"), "an excerpt of the body is logged: {log}");
    assert!(log.lines().all(|line| line.len() < 8 * 1024), "the excerpt is bounded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_model_is_reported_without_its_address_or_credentials() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a port").local_addr().expect("an address");
    let base_url = format!("http://user:planted-password@{closed}/v1?api-key=planted-key");
    let mut server = Server::with_env(&[("OPENAI_BASE_URL", &base_url), ("OPENAI_API_KEY", "sk-planted-token")]);
    let session = server.open_session("dev-key").await;

    let (status, reply) = server.say("dev-key", &session, "hello").await.expect("the server answers");
    assert_eq!(status, 502, "{reply}");
    assert_eq!(reply["error"], "the model could not be reached");
    assert!(server.stop().success());
    let log = server.log();
    assert!(log.contains("the model could not be reached"), "the cause is logged: {log}");
    assert!(!log.contains("planted"), "{log}");
}
