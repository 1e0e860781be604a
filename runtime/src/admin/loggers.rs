//! `GET /loggers` and `PUT /loggers`: the log filter and the trace filter, read and replaced at run time.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::telemetry::{self, TelemetryError};

/// A `PUT /loggers` body: the filters to replace, in `RUST_LOG` syntax; one left out stays.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewFilters {
    log: Option<String>,
    trace: Option<String>,
}

pub(super) async fn loggers() -> Response {
    match telemetry::filters() {
        Some(filters) => (super::access::no_store(), Json(filters)).into_response(),
        None => not_installed(),
    }
}

pub(super) async fn set_loggers(Json(new): Json<NewFilters>) -> Response {
    if new.log.is_none() && new.trace.is_none() {
        let error = "give `log`, `trace` or both, in RUST_LOG syntax: {\"log\": \"warn,my_service=debug\"}";
        return (StatusCode::BAD_REQUEST, Json(json!({ "error": error }))).into_response();
    }
    match telemetry::set_filters(new.log.as_deref(), new.trace.as_deref()) {
        Ok(filters) => {
            tracing::warn!(
                target: "hardened::telemetry",
                log = %filters.log,
                trace = %filters.trace,
                "filters changed through the admin listener"
            );
            (super::access::no_store(), Json(filters)).into_response()
        }
        Err(TelemetryError::NotInitialised) => not_installed(),
        Err(error @ (TelemetryError::LogFilter { .. } | TelemetryError::TraceFilter { .. })) => {
            (StatusCode::BAD_REQUEST, Json(json!({ "error": error.to_string() }))).into_response()
        }
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({ "error": error.to_string() }))).into_response(),
    }
}

fn not_installed() -> Response {
    let error = TelemetryError::NotInitialised.to_string();
    (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": error }))).into_response()
}
