//! The ops router: health probes, the detailed health report and `/metrics`.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::health::{HealthRegistry, ProbeReport};

/// The content type of the Prometheus text exposition format.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The ops endpoints over the process-wide [health registry](crate::health::registry) and
/// [metrics registry](crate::metrics::registry). Built inside a tokio runtime, it also starts the
/// [runtime watchdog](crate::health::start_watchdog).
///
/// | path | answer |
/// | --- | --- |
/// | `/health/live`, `/livez` | liveness probe: 200 or 503, `{"probe", "status", "message", "checks"}` |
/// | `/health/ready`, `/readyz` | readiness probe: 503 at once once the shutdown has begun |
/// | `/health/startup` | startup probe: 503 until [`startup_complete`](crate::health::startup_complete) |
/// | `/health` | every check in detail (503 when any probe fails) |
/// | `/metrics` | the Prometheus text exposition; `OpenMetrics`, with exemplars, to a scraper whose `Accept` asks for `application/openmetrics-text`; 404 when [`init`](crate::telemetry::init) was told to export metrics over OTLP only |
///
/// Mount it on the application's router (`app.merge(ops_router())`), or serve it alone on an admin port
/// that the outside world cannot reach, with [`Server::admin`](super::Server::admin) or `axum::serve`.
///
/// ```
/// use axum::{Router, routing::get};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let app: Router = Router::new().route("/", get(|| async { "hello" })).merge(hardened::http::ops_router());
/// # let _ = app;
/// # });
/// ```
pub fn ops_router() -> Router {
    if tokio::runtime::Handle::try_current().is_ok() {
        crate::health::start_watchdog();
    }
    ops_router_with(crate::health::registry().clone())
}

/// The ops endpoints of [`ops_router`] over the checks of `registry` (the metrics are the process's).
pub fn ops_router_with(registry: HealthRegistry) -> Router {
    Router::new()
        .route("/health/live", get(liveness))
        .route("/livez", get(liveness))
        .route("/health/ready", get(readiness))
        .route("/readyz", get(readiness))
        .route("/health/startup", get(startup))
        .route("/health", get(detailed))
        .route("/metrics", get(metrics))
        .with_state(registry)
}

async fn liveness(State(registry): State<HealthRegistry>) -> Response {
    probe_response(registry.liveness().await)
}

async fn readiness(State(registry): State<HealthRegistry>) -> Response {
    probe_response(registry.readiness().await)
}

async fn startup(State(registry): State<HealthRegistry>) -> Response {
    probe_response(registry.startup().await)
}

async fn detailed(State(registry): State<HealthRegistry>) -> Response {
    let report = registry.report().await;
    (status_code(report.status.passes()), no_store(), Json(report)).into_response()
}

async fn metrics(headers: HeaderMap) -> Response {
    if !crate::telemetry::prometheus_endpoint_enabled() {
        return (StatusCode::NOT_FOUND, "metrics are exported over OTLP only (OTEL_METRICS_EXPORTER=otlp)\n")
            .into_response();
    }
    if wants_openmetrics(&headers) {
        let body = crate::metrics::render_openmetrics();
        return ([(header::CONTENT_TYPE, crate::metrics::OPENMETRICS_CONTENT_TYPE)], body).into_response();
    }
    ([(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)], crate::metrics::render()).into_response()
}

/// Whether an `Accept` header lists `application/openmetrics-text` with a weight above zero, as
/// Prometheus does (ahead of the text format) when it stores exemplars.
fn wants_openmetrics(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default();
            let weight = parts
                .filter_map(|parameter| parameter.strip_prefix("q=").and_then(|q| q.trim().parse::<f32>().ok()))
                .next_back()
                .unwrap_or(1.0);
            media.eq_ignore_ascii_case("application/openmetrics-text") && weight > 0.0
        })
}

fn probe_response(report: ProbeReport) -> Response {
    (status_code(report.passes()), no_store(), Json(report)).into_response()
}

fn status_code(passes: bool) -> StatusCode {
    if passes { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }
}

/// Probe answers are of the moment: no cache in between may keep one.
fn no_store() -> [(header::HeaderName, &'static str); 1] {
    [(header::CACHE_CONTROL, "no-store")]
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn accepts(values: &[&str]) -> bool {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::ACCEPT, HeaderValue::from_str(value).expect("a header value"));
        }
        wants_openmetrics(&headers)
    }

    #[test]
    fn openmetrics_is_answered_only_to_a_scraper_that_asks_for_it() {
        // What Prometheus 2.42 sends with exemplar storage on.
        assert!(accepts(&[
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,\
             text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        ]));
        assert!(accepts(&["text/plain", "Application/OpenMetrics-Text; version=1.0.0"]));
        assert!(!accepts(&[]));
        assert!(!accepts(&["text/plain;version=0.0.4;q=1,*/*;q=0.1"]));
        assert!(!accepts(&["application/openmetrics-text;q=0, text/plain"]));
    }
}
