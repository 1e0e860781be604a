//! The server span of each request: a tower layer that continues the caller's trace, or for callers
//! outside the system starts a new one linked to it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::MatchedPath;
use http::{Method, Request, Response, StatusCode};
use opentelemetry::trace::TraceContextExt as _;
use tower::{Layer, Service};
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::request_limits::CutShort;

/// A layer that serves each request inside a server span continuing the caller's trace.
///
/// The span is named `"{METHOD} {route}"` (`otel.name`), with `otel.kind = "server"`,
/// `http.request.method`, `http.route` (axum's [`MatchedPath`], the route template and never the raw
/// path), `url.path`, and once the response is ready `http.response.status_code`; a 5xx response (or a
/// service error) sets `otel.status_code = "ERROR"`. Its parent is the context the request's
/// `traceparent`, `tracestate` and `baggage` headers carry ([`propagation::extract`](crate::propagation::extract)),
/// and a request without a valid one starts a new trace.
///
/// # Callers outside the system
///
/// Continuing a caller's trace lets the caller choose the trace id (which lands in every audit record
/// of the request) and the sampling decision (a `traceparent` ending in `-01` is recorded under the
/// parent-based samplers, whatever `sample_ratio` says). That is right between services of one system,
/// and wrong on a public endpoint. With [`trust_incoming_trace(false)`](Self::trust_incoming_trace) each
/// request starts a new trace, sampled as any new trace is, and the caller's span context, when the
/// headers carry a valid one, becomes a link of the server span: the two traces can still be followed
/// one to the other, as OpenTelemetry advises for public endpoints. The caller's baggage is dropped too.
///
/// Add it with [`Router::layer`](axum::Router::layer), so that it runs after routing and sees the route:
///
/// ```
/// use axum::{Router, routing::get};
/// use hardened::http::ServerTraceLayer;
///
/// let app: Router = Router::new()
///     .route("/users/{id}", get(|| async { "ada" }))
///     .layer(ServerTraceLayer::new().trust_incoming_trace(false));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ServerTraceLayer {
    trust_incoming_trace: bool,
}

impl ServerTraceLayer {
    /// The layer, continuing the traces callers send.
    #[must_use]
    pub fn new() -> Self {
        ServerTraceLayer { trust_incoming_trace: true }
    }

    /// Whether a request's trace context is continued (`true`, the default) or, for callers outside the
    /// system, each request starts a new trace linked to the caller's (`false`). See the [type's
    /// documentation](Self#callers-outside-the-system); the `[server]` key `trust_incoming_trace` is
    /// meant to set it.
    #[must_use]
    pub fn trust_incoming_trace(self, trust: bool) -> Self {
        ServerTraceLayer { trust_incoming_trace: trust }
    }
}

impl Default for ServerTraceLayer {
    fn default() -> Self {
        ServerTraceLayer::new()
    }
}

impl<S> Layer<S> for ServerTraceLayer {
    type Service = ServerTrace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ServerTrace { inner, trust_incoming_trace: self.trust_incoming_trace }
    }
}

/// The service [`ServerTraceLayer`] makes: `inner`, called inside a server span.
#[derive(Debug, Clone)]
pub struct ServerTrace<S> {
    inner: S,
    trust_incoming_trace: bool,
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
        let span = server_span(&request, self.trust_incoming_trace);
        let cut_short = request.extensions().get::<CutShort>().cloned();
        let future = span.in_scope(|| self.inner.call(request));
        ServerTraceFuture { inner: future, status: SpanStatus { span, cut_short, recorded: false } }
    }
}

/// The span of one request, its parent (or its link) set from the request's headers.
fn server_span<B>(request: &Request<B>, trust_incoming_trace: bool) -> Span {
    let method = method_name(request.method());
    let route = request.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
    let span = tracing::info_span!(
        target: "hardened::http",
        "http.server.request",
        otel.name = %SpanName { method, route },
        otel.kind = "server",
        http.request.method = method,
        http.route = route,
        url.path = request.uri().path(),
        http.response.status_code = Empty,
        otel.status_code = Empty,
        error.type = Empty,
    );
    let incoming = crate::propagation::extract(request.headers());
    // The span is still a builder here, so the parent always takes; a disabled span has none to take.
    if trust_incoming_trace {
        let _ = crate::telemetry::set_parent(&span, incoming);
    } else {
        // A root, whatever span is current: the sampler decides as for any new trace.
        let _ = crate::telemetry::set_parent(&span, opentelemetry::Context::new());
        let caller = incoming.span().span_context().clone();
        if caller.is_valid() {
            span.add_link(caller);
        }
    }
    span
}

/// A server span's name as the HTTP semantic conventions make it, `{method} {route}` or the method alone:
/// written out by the layer that reads it (an exporter's), rather than formatted for every request.
struct SpanName<'a> {
    method: &'static str,
    route: Option<&'a str>,
}

impl fmt::Display for SpanName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.route {
            Some(route) => write!(f, "{} {route}", self.method),
            None => f.write_str(self.method),
        }
    }
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
        status: SpanStatus,
    }
}

impl<F, ResponseBody, E> Future for ServerTraceFuture<F>
where
    F: Future<Output = Result<Response<ResponseBody>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = {
            let _entered = this.status.span.enter();
            std::task::ready!(this.inner.poll(cx))
        };
        if let Ok(response) = &result {
            this.status.record(response.status());
        } else {
            this.status.recorded = true;
            this.status.span.record("otel.status_code", "ERROR");
            this.status.span.record("error.type", "service_error");
        }
        Poll::Ready(result)
    }
}

/// The request's span, and whether its answer is recorded on it: when the server cuts the request
/// short (its request timeout), the future is dropped unanswered, and the status the client got is
/// recorded then.
#[derive(Debug)]
struct SpanStatus {
    span: Span,
    cut_short: Option<CutShort>,
    recorded: bool,
}

impl SpanStatus {
    fn record(&mut self, status: StatusCode) {
        self.recorded = true;
        self.span.record("http.response.status_code", status.as_u16());
        if status.is_server_error() {
            self.span.record("otel.status_code", "ERROR");
            self.span.record("error.type", status.as_str());
        }
    }
}

impl Drop for SpanStatus {
    fn drop(&mut self) {
        if !self.recorded
            && let Some(status) = self.cut_short.as_ref().and_then(CutShort::status)
        {
            self.record(status);
        }
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

    #[test]
    fn a_span_is_named_by_its_method_and_route_template_or_its_method_alone() {
        assert_eq!(SpanName { method: "GET", route: Some("/orders/{id}") }.to_string(), "GET /orders/{id}");
        assert_eq!(SpanName { method: "POST", route: None }.to_string(), "POST");
    }
}
