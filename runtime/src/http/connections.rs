//! Serving the connections a [`DrainingListener`] lets in with hyper's HTTP/1, under a header-read
//! timeout, until a graceful shutdown; what `axum::serve` does, with the timeout it does not expose.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::pin;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::watch;
use tower::Service as _;

use super::listener::{Connection, DrainingListener};

/// Serves `app` on every connection `listener` lets in, until `shutdown` resolves; then asks each
/// connection to close once its request in progress is answered, and returns when all have closed.
pub(super) async fn serve(
    mut listener: DrainingListener,
    app: Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    // Dropping the receiver tells every connection to shut down; each connection holds a `closed`
    // receiver, which the server waits to see all dropped.
    let (stop, stopping) = watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        drop(stopping);
    });
    let (closed, open) = watch::channel(());
    loop {
        let (connection, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.closed() => break,
        };
        tokio::spawn(serve_connection(connection, peer, app.clone(), header_read_timeout, stop.clone(), open.clone()));
    }
    drop(open);
    drop(listener);
    closed.closed().await;
}

async fn serve_connection(
    connection: Connection,
    peer: SocketAddr,
    app: Router,
    header_read_timeout: Duration,
    stop: watch::Sender<()>,
    open: watch::Receiver<()>,
) {
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        // What `into_make_service_with_connect_info` gives handlers, for `ConnectInfo<SocketAddr>`.
        request.extensions_mut().insert(ConnectInfo(peer));
        let mut app = app.clone();
        async move { Ok::<_, Infallible>(app.call(request).await.unwrap_or_else(|never| match never {})) }
    });
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(header_read_timeout);
    let mut served = pin!(builder.serve_connection(TokioIo::new(connection), service).with_upgrades());
    let mut stopping = pin!(stop.closed());
    let mut asked_to_close = false;
    loop {
        tokio::select! {
            result = served.as_mut() => {
                if let Err(error) = result {
                    // A client gone away, or one cut off by the header-read timeout: routine.
                    tracing::debug!(target: "hardened::http", %error, %peer, "connection ended with an error");
                }
                break;
            }
            () = &mut stopping, if !asked_to_close => {
                asked_to_close = true;
                served.as_mut().graceful_shutdown();
            }
        }
    }
    drop(open);
}
