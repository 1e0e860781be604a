//! Serving an axum application under the graceful shutdown.

use std::io;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::panics::CatchPanicLayer;
use super::{ServerLimits, connections, listener, request_limits};
use crate::shutdown::{self, Shutdown, ShutdownConfig, ShutdownSummary};

/// An axum application served until SIGTERM or SIGINT, then shut down gracefully: see
/// [`Shutdown`] for the steps.
///
/// ```no_run
/// use axum::{Router, routing::get};
///
/// # async fn run() -> std::io::Result<()> {
/// let app = Router::new().route("/", get(|| async { "hello" })).merge(hardened::http::ops_router());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// let summary = hardened::http::Server::new(app).run(listener).await?;
/// assert!(summary.is_clean());
/// # Ok(())
/// # }
/// ```
///
/// Handlers see the client's address through axum's `ConnectInfo<SocketAddr>`. Once the shutdown has
/// begun, responses carry `Connection: close`, so that clients leave before the listener closes. When it
/// closes, the connections the kernel has queued are accepted first and a connection that has not sent its
/// request yet gets two seconds to send it: every connection let in is answered, and only later connects
/// are refused.
///
/// Every client is held to [`ServerLimits`] (by default those of the `[server]` section of the
/// configuration): a header-read timeout, a request timeout, a cap on connections served at once and a
/// body limit. A handler that panics is answered `500 Internal Server Error` and audited as an
/// [`Error`](crate::audit::EventType::Error) event, and its connection goes on serving. The server
/// speaks HTTP/1.1.
#[derive(Debug)]
#[must_use = "a server does nothing until it is run"]
pub struct Server {
    app: Router,
    admin: Option<(TcpListener, Router)>,
    config: ShutdownConfig,
    limits: ServerLimits,
}

impl Server {
    /// A server for `app`, with the default [`ShutdownConfig`] and the [configured](ServerLimits::configured)
    /// [`ServerLimits`].
    pub fn new(app: Router) -> Server {
        Server { app, admin: None, config: ShutdownConfig::default(), limits: ServerLimits::configured() }
    }

    /// The limits every client is held to, on the application's listener and the admin one.
    pub fn limits(mut self, limits: ServerLimits) -> Server {
        self.limits = limits;
        self
    }

    /// Also serves `router` (typically [`ops_router`](super::ops_router)) on `listener`, a separate
    /// admin port. It keeps answering through the whole shutdown, so probes and `/metrics` can watch the
    /// drain, and closes last.
    pub fn admin(mut self, listener: TcpListener, router: Router) -> Server {
        self.admin = Some((listener, router));
        self
    }

    /// The timings of the shutdown.
    pub fn shutdown(mut self, config: ShutdownConfig) -> Server {
        self.config = config;
        self
    }

    /// Listens for signals ([`shutdown::listen_for_signals`]), serves on `listener` until the shutdown
    /// is requested, runs it, and returns its summary.
    ///
    /// # Errors
    ///
    /// When the application's server fails before any shutdown was requested.
    pub async fn run(self, listener: TcpListener) -> io::Result<ShutdownSummary> {
        shutdown::listen_for_signals();
        let (admin_stop, admin) = match self.admin {
            Some((listener, router)) => {
                let (stop, stopped) = oneshot::channel::<()>();
                let admin = spawn_server(listener, router, self.limits, async {
                    let _ = stopped.await;
                });
                (Some(stop), Some(admin))
            }
            None => (None, None),
        };

        let server = spawn_server(listener, self.app, self.limits, shutdown::closing());
        let server_abort = server.abort_handle();
        let (done, mut main_done) = oneshot::channel();
        tokio::spawn(async move {
            let _ = done.send(server.await);
        });

        tokio::select! {
            finished = &mut main_done => {
                // The server ended on its own, before any shutdown: report why.
                if let Some(admin_stop) = admin_stop {
                    let _ = admin_stop.send(());
                }
                return Err(match finished {
                    Ok(Ok(Ok(()))) => io::Error::other("the server stopped before any shutdown was requested"),
                    Ok(Ok(Err(error))) => error,
                    Ok(Err(join)) => io::Error::other(format!("the server task failed: {join}")),
                    Err(_) => io::Error::other("the server task ended without a result"),
                });
            }
            () = shutdown::requested() => {}
        }

        let summary = Shutdown::new(self.config)
            .drain(async move {
                let _ = main_done.await;
            })
            .run()
            .await;
        // A server still holding connections after the drain is cut off here.
        server_abort.abort();
        if let (Some(stop), Some(admin)) = (admin_stop, admin) {
            let _ = stop.send(());
            let _ = admin.await;
        }
        Ok(summary)
    }
}

/// Once the shutdown has begun, every response asks its client to close the connection: during the
/// pre-stop delay clients move to new connections, which other replicas take, instead of keeping one that
/// is about to close under a request (the keep-alive race, which a client sees as a reset).
async fn close_connections_once_stopping(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if shutdown::has_begun() {
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

fn spawn_server(
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    until: impl Future<Output = ()> + Send + 'static,
) -> JoinHandle<io::Result<()>> {
    // Outermost last: the shutdown's `Connection: close` is on every answer, a panic anywhere inside is
    // answered, and the limits are checked before the application sees the request.
    let app = app
        .layer(DefaultBodyLimit::max(limits.body_limit))
        .layer(axum::middleware::from_fn_with_state(limits, request_limits::hold_to_limits))
        .layer(CatchPanicLayer)
        .layer(axum::middleware::from_fn(close_connections_once_stopping));
    let (listener, shutdown) = listener::draining(listener, limits.max_connections, until);
    tokio::spawn(async move {
        connections::serve(listener, app, limits.header_read_timeout, shutdown).await;
        Ok(())
    })
}
