//! HTTP for axum services: the server (graceful shutdown and limits on every client), the ops router
//! (probes and metrics) and the layers that trace and measure requests.

mod body;
mod connections;
mod labels;
mod limits;
mod listener;
mod ops;
mod panics;
mod request_limits;
mod requests;
mod serve;
mod trace;

pub use self::labels::{OTHER_METHOD, UNMATCHED_ROUTE};
pub use self::limits::ServerLimits;
pub use self::ops::{PROMETHEUS_CONTENT_TYPE, ops_router, ops_router_with};
pub use self::requests::{RequestFuture, RequestLayer, RequestService, requests_in_flight};
pub use self::serve::Server;
pub use self::trace::{ServerTrace, ServerTraceFuture, ServerTraceLayer};
