//! A handler that panics: answered `500 Internal Server Error`, audited, and its connection kept.
//!
//! Without this, the panic unwinds through hyper's connection task, which tokio ends quietly: the client
//! sees its connection close without an answer, and nothing records what happened.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::MatchedPath;
use axum::http::{Method, Request, Response, StatusCode};
use tower::{Layer, Service};

use super::labels::UNMATCHED_ROUTE;
use crate::audit::{AuditEvent, AuditOutcome, EventType};

/// What a panic answers with, and what its audit event says it was.
const PANIC_DETAILS: &str = "the request's handler panicked";

/// The layer [`Server`](super::Server) puts around every application, for the panics of services outside
/// a [`RequestLayer`](super::RequestLayer) (which catches its own within the request's audit scope).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct CatchPanicLayer;

impl<S> Layer<S> for CatchPanicLayer {
    type Service = CatchPanicService<S>;

    fn layer(&self, inner: S) -> CatchPanicService<S> {
        CatchPanicService { inner }
    }
}

/// See [`CatchPanicLayer`].
#[derive(Debug, Clone)]
pub(super) struct CatchPanicService<S> {
    inner: S,
}

impl<S, B, ResBody> Service<Request<B>> for CatchPanicService<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = CatchPanic<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> CatchPanic<S::Future> {
        let site = PanicSite::of(&request);
        CatchPanic::new(self.inner.call(request), site)
    }
}

/// Where a panic happened, for its audit event: the request's method and route template (never the raw
/// path, which the client chooses).
/// Cheap to take: a standard method and the matched route are copied without allocating.
#[derive(Debug, Clone)]
pub(super) struct PanicSite {
    method: Method,
    route: Option<MatchedPath>,
}

impl PanicSite {
    pub(super) fn of<B>(request: &Request<B>) -> PanicSite {
        PanicSite { method: request.method().clone(), route: request.extensions().get::<MatchedPath>().cloned() }
    }

    fn route(&self) -> &str {
        self.route.as_ref().map_or(UNMATCHED_ROUTE, MatchedPath::as_str)
    }

    /// Records the panic as an `Error` audit event, in the current audit scope (the request's actor).
    fn audit(&self) {
        tracing::error!(
            target: "hardened::http",
            method = %self.method,
            route = self.route(),
            "a request's handler panicked; answered 500"
        );
        crate::audit::emit(
            AuditEvent::new(EventType::Error)
                .resource(format!("{} {}", self.method, self.route()))
                .outcome(AuditOutcome::Failure)
                .outcome_details(PANIC_DETAILS)
                .detail("call_outcome", "panic")
                .detail("http.response.status_code", StatusCode::INTERNAL_SERVER_ERROR.as_u16()),
        );
    }
}

pin_project_lite::pin_project! {
    /// `inner`, answered 500 if it panics.
    pub(crate) struct CatchPanic<F> {
        #[pin]
        inner: F,
        site: PanicSite,
    }
}

impl<F> CatchPanic<F> {
    pub(super) fn new(inner: F, site: PanicSite) -> CatchPanic<F> {
        CatchPanic { inner, site }
    }
}

impl<F> std::fmt::Debug for CatchPanic<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatchPanic").field("site", &self.site).finish_non_exhaustive()
    }
}

impl<F, ResBody, E> Future for CatchPanic<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: Default,
{
    type Output = Result<Response<ResBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        // Unwind safety: after a panic `inner` is never polled again, and only the answer is made.
        match std::panic::catch_unwind(AssertUnwindSafe(|| this.inner.poll(cx))) {
            Ok(poll) => poll,
            Err(payload) => {
                // The payload's text is not recorded: it may hold what the handler was working on. The
                // panic hook has printed it already.
                drop(payload);
                this.site.audit();
                let mut response = Response::new(ResBody::default());
                *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                Poll::Ready(Ok(response))
            }
        }
    }
}
