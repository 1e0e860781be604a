//! `GET /config` and `POST /config/reload`: the configuration in force with where each value came from,
//! and reading it again.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub(super) async fn config() -> Response {
    (super::access::no_store(), Json(crate::config::effective_config())).into_response()
}

pub(super) async fn reload() -> Response {
    let reloaded = tokio::task::spawn_blocking(|| crate::config::reload_and_audit("POST /config/reload")).await;
    match reloaded {
        Ok(Ok(reloaded)) => (super::access::no_store(), Json(reloaded)).into_response(),
        Ok(Err(error)) => {
            let body = json!({ "error": error.to_string(), "kept": "the configuration in force is unchanged" });
            (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
        }
        Err(join) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({ "error": join.to_string() }))).into_response(),
    }
}
