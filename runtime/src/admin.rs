//! The admin router: the public-safe ops endpoints of [`ops_router`](crate::http::ops_router), plus the
//! operations endpoints that show and change the process's internals, behind an optional bearer token.

mod access;
mod calls;
mod config;
mod guards;
mod loggers;
mod page;

use std::net::SocketAddr;

use axum::Router;
use axum::routing::{get, post};

pub use self::access::AdminAccess;

/// The admin endpoints, for a listener of their own ([`Server::admin`](crate::http::Server::admin)); never for
/// the application's listener.
///
/// Besides every endpoint of [`ops_router`](crate::http::ops_router) (probes and `/metrics`, which stay open to
/// anyone who can reach the listener, as orchestrators and scrapers expect), it serves the operations
/// endpoints:
///
/// | method and path | answer |
/// | --- | --- |
/// | `GET /guards` | every guard and its state: [`guard_states`](crate::guard_states) as JSON |
/// | `GET /calls` | every call site's totals (calls by outcome, duration histogram, in flight) as JSON |
/// | `GET /config` | the effective configuration, each value with its source, secrets redacted |
/// | `POST /config/reload` | reads the configuration again from where it was loaded; 200 with what changed, or 422 with the errors (nothing changes) |
/// | `GET /loggers` | the log filter and the trace filter in force |
/// | `PUT /loggers` | `{"log": "..", "trace": ".."}` (either or both) replaces a filter: 200 with the filters now in force, or 400 with the parse error (nothing changes) |
///
/// and `GET /hardened`, the live page: one self-contained HTML page that polls `/calls` and `/guards`
/// every second and shows each call site's rate, error ratio, p50, p99 and calls in flight, and each
/// guard's state. The page itself is open (it holds no data); the operator gives it the token in the
/// URL's fragment, `/hardened#token=<token>` (never sent to the server), or types it into the page.
///
/// Who may call the operations endpoints is [`AdminAccess`]'s decision: with a token, those presenting
/// it as `Authorization: Bearer <token>` (others get `401` with `WWW-Authenticate: Bearer`); without one,
/// anyone when the listener's `address` is a loopback address (or the operator allowed it explicitly),
/// else no one (`403`, saying how to set a token).
///
/// ```
/// use std::net::SocketAddr;
/// use hardened::admin::{AdminAccess, admin_router};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let address: SocketAddr = "127.0.0.1:9090".parse().unwrap();
/// let router = admin_router(AdminAccess::configured(), address);
/// # let _ = router;
/// # });
/// ```
pub fn admin_router(access: AdminAccess, address: SocketAddr) -> Router {
    let operations = Router::new()
        .route("/guards", get(guards::guards))
        .route("/calls", get(calls::calls))
        .route("/config", get(config::config))
        .route("/config/reload", post(config::reload))
        .route("/loggers", get(loggers::loggers).put(loggers::set_loggers))
        .layer(axum::middleware::from_fn_with_state(access.decide(address), access::check));
    // The page holds no data and a browser cannot send a token with a navigation: it is open, and its
    // fetches of /calls and /guards carry the token.
    crate::http::ops_router().route("/hardened", get(page::page)).merge(operations)
}
