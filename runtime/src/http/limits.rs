//! [`ServerLimits`]: how long a client may take, how much it may send, and how many connections are
//! served at once.

use std::sync::{PoisonError, RwLock};
use std::time::Duration;

/// The limits [`Server`](super::Server) holds every client to, so that slow or greedy clients cannot
/// hold its connections, tasks or memory.
///
/// | limit | default | beyond it |
/// | --- | --- | --- |
/// | [`header_read_timeout`](Self::header_read_timeout) | 10 s | the connection is closed |
/// | [`request_timeout`](Self::request_timeout) | 30 s | `408 Request Timeout` or `503 Service Unavailable` |
/// | [`max_connections`](Self::max_connections) | 1024 | new connections wait in the kernel's backlog |
/// | [`body_limit`](Self::body_limit) | 1 MiB | `413 Payload Too Large` |
///
/// [`configured`](Self::configured) reads them from the `[server]` section of the configuration.
///
/// ```
/// use std::time::Duration;
/// use hardened::http::ServerLimits;
///
/// let limits = ServerLimits { request_timeout: Duration::from_mins(2), ..ServerLimits::configured() };
/// # let _ = limits;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// How long a client has to send a request's head (request line and headers), counted from the moment
    /// the connection is ready for it: from the connect, and on a kept-alive connection from the end of
    /// the previous response. It is therefore also how long an idle kept-alive connection stays open. A
    /// client that has not sent a whole head by then has its connection closed without an answer: it is
    /// what holds off slowloris, a client that opens connections and sends its headers a byte at a time.
    pub header_read_timeout: Duration,
    /// How long one request may take from its head to its response's head, reading its body included.
    /// Past it the handler is cancelled and the client answered `408 Request Timeout` (with
    /// `Connection: close`) when the handler was waiting for the client to send more of the body, or `503
    /// Service Unavailable` when the handler itself was slow.
    pub request_timeout: Duration,
    /// Connections served at once. Further connections are not accepted until one closes: they wait in
    /// the kernel's accept queue (the listener's backlog), and when that is full the kernel drops new
    /// connection requests, which clients retry. Waiting rather than refusing keeps a burst of honest
    /// clients from seeing errors, and costs the server nothing per waiting client. Once the graceful
    /// shutdown closes the listener, the connections queued are accepted even over this number, so that
    /// each is answered.
    pub max_connections: usize,
    /// The largest request body, in bytes. A request whose `Content-Length` says more is answered `413
    /// Payload Too Large` before the handler runs; a body without a length that grows past it fails to
    /// read, and axum's extractors (`Json`, `Bytes`, `String`, ...) answer 413. It is also the limit of
    /// those extractors ([`DefaultBodyLimit`](axum::extract::DefaultBodyLimit)), which a route can lower
    /// with its own `DefaultBodyLimit`.
    pub body_limit: usize,
}

/// The limits the configuration installed last, if it did (pushed by the configuration, which this module
/// does not read).
static CONFIGURED: RwLock<Option<ServerLimits>> = RwLock::new(None);

impl ServerLimits {
    /// The default header-read timeout.
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    /// The default request timeout.
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
    /// The default number of connections served at once.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
    /// The default largest request body: 1 MiB.
    pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

    /// The defaults with the [`[server]` section](crate::config::ServerSettings) of the configuration in
    /// force applied.
    #[must_use]
    pub fn configured() -> ServerLimits {
        CONFIGURED.read().unwrap_or_else(PoisonError::into_inner).unwrap_or_default()
    }

    /// Makes `limits` what [`ServerLimits::configured`] returns: the configuration's `[server]`.
    pub(crate) fn install(limits: ServerLimits) {
        *CONFIGURED.write().unwrap_or_else(PoisonError::into_inner) = Some(limits);
    }
}

impl Default for ServerLimits {
    fn default() -> ServerLimits {
        ServerLimits {
            header_read_timeout: ServerLimits::DEFAULT_HEADER_READ_TIMEOUT,
            request_timeout: ServerLimits::DEFAULT_REQUEST_TIMEOUT,
            max_connections: ServerLimits::DEFAULT_MAX_CONNECTIONS,
            body_limit: ServerLimits::DEFAULT_BODY_LIMIT,
        }
    }
}
