//! The [`ServerLimits`] of one request: its body limit and its timeout.

use std::pin::pin;
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

use super::ServerLimits;
use super::body::{BodyProgress, WatchedBody};

/// The status a request was answered with by the server when it cut the handler short: the layers
/// inside (request metrics, the server span), whose futures are dropped unanswered, read it to record
/// the answer the client got. Put in the request's extensions.
#[derive(Debug, Clone, Default)]
pub(crate) struct CutShort(Arc<OnceLock<StatusCode>>);

impl CutShort {
    /// The status the server answered with, once it has cut the request short.
    pub(crate) fn status(&self) -> Option<StatusCode> {
        self.0.get().copied()
    }
}

/// Holds one request to `limits`: a declared body over the limit is answered 413 at once, the body is
/// cut at the limit, and a request not answered within the request timeout is answered 408 or 503.
pub(super) async fn hold_to_limits(State(limits): State<ServerLimits>, request: Request, next: Next) -> Response {
    if declared_length(&request).is_some_and(|length| length > limits.body_limit as u64) {
        return too_large(limits.body_limit);
    }
    let progress = BodyProgress::default();
    let cut = CutShort::default();
    let mut request = request.map(|body| Body::new(WatchedBody::new(body, limits.body_limit, progress.clone())));
    request.extensions_mut().insert(cut.clone());

    let handling = pin!(next.run(request));
    tokio::select! {
        response = handling => response,
        () = tokio::time::sleep(limits.request_timeout) => {
            let response = timed_out(&progress);
            // Set before `handling` is dropped, at the end of this function, so that what it drops sees it.
            let _ = cut.0.set(response.status());
            response
        }
    }
}

fn declared_length(request: &Request) -> Option<u64> {
    request.headers().get(header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

fn too_large(limit: usize) -> Response {
    let message = format!("the request body is larger than the limit of {limit} bytes");
    let mut response = (StatusCode::PAYLOAD_TOO_LARGE, message).into_response();
    // The body was not read: the connection cannot carry another request.
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// 408 when the client was still owing the body the handler waited for, else 503: the server was slow.
fn timed_out(progress: &BodyProgress) -> Response {
    if progress.waiting_for_client() {
        let mut response = (StatusCode::REQUEST_TIMEOUT, "the request was not received in time").into_response();
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        response
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "the request could not be answered in time").into_response()
    }
}
