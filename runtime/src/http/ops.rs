//! The ops router: health probes, the detailed health report and `/metrics`.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
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
/// | `/metrics` | the Prometheus text exposition; 404 when [`init`](crate::telemetry::init) was told to export metrics over OTLP only |
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

async fn metrics() -> Response {
    if !crate::telemetry::prometheus_endpoint_enabled() {
        return (StatusCode::NOT_FOUND, "metrics are exported over OTLP only (OTEL_METRICS_EXPORTER=otlp)\n")
            .into_response();
    }
    ([(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)], crate::metrics::render()).into_response()
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
