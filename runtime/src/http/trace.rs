//! The server span of each request: a tower layer that continues the caller's trace.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::MatchedPath;
use http::{Method, Request, Response};
use tower::{Layer, Service};
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// A layer that serves each request inside a server span continuing the caller's trace.
///
/// The span is named `"{METHOD} {route}"` (`otel.name`), with `otel.kind = "server"`,
/// `http.request.method`, `http.route` (axum's [`MatchedPath`], the route template and never the raw
/// path), `url.path`, and once the response is ready `http.response.status_code`; a 5xx response (or a
/// service error) sets `otel.status_code = "ERROR"`. Its parent is the context the request's
/// `traceparent`, `tracestate` and `baggage` headers carry ([`propagation::extract`](crate::propagation::extract)),
/// and a request without a valid one starts a new trace.
///
/// Add it with [`Router::layer`](axum::Router::layer), so that it runs after routing and sees the route:
///
/// ```
/// use axum::{Router, routing::get};
/// use hardened::http::ServerTraceLayer;
///
/// let app: Router = Router::new()
///     .route("/users/{id}", get(|| async { "ada" }))
///     .layer(ServerTraceLayer::new());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerTraceLayer {
    _private: (),
}

impl ServerTraceLayer {
    /// The layer.
    #[must_use]
    pub fn new() -> Self {
        ServerTraceLayer { _private: () }
    }
}

impl<S> Layer<S> for ServerTraceLayer {
    type Service = ServerTrace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ServerTrace { inner }
    }
}

/// The service [`ServerTraceLayer`] makes: `inner`, called inside a server span.
#[derive(Debug, Clone)]
pub struct ServerTrace<S> {
    inner: S,
}

impl<S, RequestBody, ResponseBody> Service<Request<RequestBody>> for ServerTrace<S>
where
    S: Service<Request<RequestBody>, Response = Response<ResponseBody>>,
{
    type Response = Response<ResponseBody>;
    type Error = S::Error;
    type Future = ServerTraceFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<RequestBody>) -> Self::Future {
        let span = server_span(&request);
        let future = span.in_scope(|| self.inner.call(request));
        ServerTraceFuture { inner: future, span }
    }
}

/// The span of one request, its parent set from the request's headers.
fn server_span<B>(request: &Request<B>) -> Span {
    let method = method_name(request.method());
    let route = request.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
    let name = match route {
        Some(route) => format!("{method} {route}"),
        None => method.to_owned(),
    };
    let span = tracing::info_span!(
        target: "hardened::http",
        "http.server.request",
        otel.name = %name,
        otel.kind = "server",
        http.request.method = method,
        http.route = route,
        url.path = request.uri().path(),
        http.response.status_code = Empty,
        otel.status_code = Empty,
        error.type = Empty,
    );
    // The span is still a builder here, so the parent always takes; a disabled span has none to take.
    let _ = span.set_parent(crate::propagation::extract(request.headers()));
    span
}

/// The method as the HTTP semantic conventions name it: a known method, or `_OTHER`.
fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "_OTHER",
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`ServerTrace`]: polls the inner future inside the span and records the
    /// response's status on it.
    #[derive(Debug)]
    pub struct ServerTraceFuture<F> {
        #[pin]
        inner: F,
        span: Span,
    }
}

impl<F, ResponseBody, E> Future for ServerTraceFuture<F>
where
    F: Future<Output = Result<Response<ResponseBody>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        let result = std::task::ready!(this.inner.poll(cx));
        if let Ok(response) = &result {
            let status = response.status();
            this.span.record("http.response.status_code", status.as_u16());
            if status.is_server_error() {
                this.span.record("otel.status_code", "ERROR");
                this.span.record("error.type", status.as_str());
            }
        } else {
            this.span.record("otel.status_code", "ERROR");
            this.span.record("error.type", "service_error");
        }
        Poll::Ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_are_named_other() {
        assert_eq!(method_name(&Method::GET), "GET");
        assert_eq!(method_name(&Method::from_bytes(b"PURGE").expect("a valid method")), "_OTHER");
    }
}
