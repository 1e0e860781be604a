//! Outbound `reqwest` calls as the OpenTelemetry HTTP client conventions describe them: a client span
//! around each call, whose context the request's headers carry, and the client duration histogram.

use std::sync::OnceLock;
use std::time::Instant;

use prometheus::{HistogramOpts, HistogramVec};
use tracing::Instrument as _;
use tracing::Span;
use tracing::field::Empty;

/// Outbound propagation for `reqwest`: `client.get(url).traced().send()`.
pub trait TracedRequest {
    /// The request, to be sent inside a client span whose context its headers carry (see
    /// [`TracedRequestBuilder::send`]). Call it last, just before `send`.
    fn traced(self) -> TracedRequestBuilder;
}

impl TracedRequest for reqwest::RequestBuilder {
    fn traced(self) -> TracedRequestBuilder {
        TracedRequestBuilder { builder: self }
    }
}

/// A `reqwest` request made ready with [`TracedRequest::traced`]: sent, it gets a client span and is
/// measured.
#[derive(Debug)]
#[must_use = "a request does nothing until it is sent"]
pub struct TracedRequestBuilder {
    builder: reqwest::RequestBuilder,
}

impl TracedRequestBuilder {
    /// Sends the request inside a client span, a child of the current span, and measures it.
    ///
    /// The span is named after the method (`otel.name`), with `otel.kind = "client"`,
    /// `http.request.method`, `server.address`, `server.port`, `url.full` (its user name, password and query
    /// values masked, see [`redact::urls`](crate::redact::urls)), and once the response head arrives
    /// `http.response.status_code`. A status of 400 or more, or a failure without a response, sets
    /// `otel.status_code = "ERROR"` and `error.type` (the status code; `timeout`, `connect` or `_OTHER`).
    /// The `traceparent` the request carries names the client span, so the server's span is its child.
    ///
    /// The time to the response head is recorded in
    /// `hardened_http_client_request_duration_seconds{method,server_address,status}` (the OpenTelemetry
    /// `http.client.request.duration`), `status` being the code or `error`.
    ///
    /// # Errors
    ///
    /// What [`reqwest::RequestBuilder::send`] returns: the request could not be built or sent, or no
    /// response came.
    pub async fn send(self) -> Result<reqwest::Response, reqwest::Error> {
        let (client, request) = self.builder.build_split();
        let mut request = request?;
        let method = method_name(request.method());
        let server = request.url().host_str().unwrap_or_default().to_owned();
        let span = client_span(method, &server, &request);
        span.in_scope(|| super::inject(request.headers_mut()));

        let started = Instant::now();
        let result = client.execute(request).instrument(span.clone()).await;
        let seconds = started.elapsed().as_secs_f64();

        let status = match &result {
            Ok(response) => {
                let code = response.status().as_u16();
                span.record("http.response.status_code", code);
                if code >= 400 {
                    span.record("otel.status_code", "ERROR");
                    span.record("error.type", tracing::field::display(code));
                }
                code.to_string()
            }
            Err(error) => {
                span.record("otel.status_code", "ERROR");
                span.record("error.type", error_type(error));
                "error".to_owned()
            }
        };
        duration().with_label_values(&[method, server.as_str(), status.as_str()]).observe(seconds);
        result
    }
}

/// The client span of `request`, a child of the current span.
fn client_span(method: &'static str, server: &str, request: &reqwest::Request) -> Span {
    let url = request.url();
    tracing::info_span!(
        target: "hardened::http",
        "http.client.request",
        otel.name = method,
        otel.kind = "client",
        http.request.method = method,
        server.address = server,
        server.port = url.port_or_known_default(),
        url.full = %crate::redact::urls(url.as_str()),
        http.response.status_code = Empty,
        otel.status_code = Empty,
        error.type = Empty,
    )
}

/// The method as the HTTP semantic conventions name it: a known method, or `_OTHER`.
fn method_name(method: &reqwest::Method) -> &'static str {
    const KNOWN: [&str; 9] = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"];
    KNOWN.into_iter().find(|known| *known == method.as_str()).unwrap_or("_OTHER")
}

/// `error.type` for a call that got no response: a few kinds an operator tells apart, `_OTHER` for the rest.
fn error_type(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connect"
    } else {
        "_OTHER"
    }
}

/// `hardened_http_client_request_duration_seconds`, registered in [`crate::metrics::registry`] at the
/// first traced call.
fn duration() -> &'static HistogramVec {
    static DURATION: OnceLock<HistogramVec> = OnceLock::new();
    DURATION.get_or_init(|| {
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "hardened_http_client_request_duration_seconds",
                "Time from sending an outbound HTTP request to its response head, by method, server and status.",
            )
            .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            &["method", "server_address", "status"],
        )
        .expect("valid metric options");
        if let Err(error) = crate::metrics::registry().register(Box::new(duration.clone())) {
            tracing::error!(%error, "the HTTP client metrics could not be registered");
        }
        duration
    })
}
