//! The HTTP API: sessions and their messages, and the fault-injection admin endpoint.

use std::sync::Arc;

use axum::extract::{Extension, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use hardened::Rejected;
use hardened::audit::{self, AuditEvent, EventType};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::OwnedMutexGuard;
use uuid::Uuid;

use crate::agent::Agent;
use crate::auth::{KeyRing, Principal, authenticate};
use crate::model::ModelError;
use crate::sessions::{Session, Sessions};
use crate::tools::FaultSettings;
use crate::trail;

/// What the handlers share.
#[derive(Debug)]
pub(crate) struct App {
    pub(crate) agent: Agent,
    pub(crate) sessions: Sessions,
    /// The most messages a session's transcript keeps.
    pub(crate) max_messages: usize,
}

/// The API routes, behind API-key authentication.
pub(crate) fn routes(app: Arc<App>, keys: Arc<KeyRing>) -> Router {
    Router::new()
        .route("/v1/sessions", post(open_session))
        .route("/v1/sessions/{id}", get(read_session))
        .route("/v1/sessions/{id}/messages", post(send_message))
        .route("/v1/admin/faults", put(set_faults).get(read_faults))
        .layer(axum::middleware::from_fn_with_state(keys, authenticate))
        .with_state(app)
}

/// An error answered as JSON with its status.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into(), retry_after: None }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(json!({ "error": self.message }))).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<ModelError> for ApiError {
    /// A refusal by a guard is the service protecting itself: 429 or 503 with `Retry-After`, answered at
    /// once. A failure of the model is the upstream's: 502, or 504 for a timeout.
    fn from(error: ModelError) -> ApiError {
        let message = error.to_string();
        match error {
            ModelError::Refused(Rejected::RateLimited { retry_after, .. }) => ApiError {
                status: StatusCode::TOO_MANY_REQUESTS,
                message,
                retry_after: Some(retry_after.as_secs().max(1)),
            },
            ModelError::Refused(Rejected::TimedOut { .. }) => ApiError::new(StatusCode::GATEWAY_TIMEOUT, message),
            ModelError::Refused(_) => {
                ApiError { status: StatusCode::SERVICE_UNAVAILABLE, message, retry_after: Some(1) }
            }
            ModelError::Unreachable(_) | ModelError::Status { .. } | ModelError::Malformed(_) => {
                ApiError::new(StatusCode::BAD_GATEWAY, message)
            }
        }
    }
}

async fn open_session(State(app): State<Arc<App>>, Extension(principal): Extension<Principal>) -> Response {
    let id = app.sessions.open(&principal.0.name);
    trail::record(|| AuditEvent::new(EventType::SessionStart).session_id(id.to_string()).resource("session"));
    (StatusCode::CREATED, Json(json!({ "id": id }))).into_response()
}

/// The session `id`, locked, if `principal` owns it; 404 otherwise, so that the ids of others' sessions
/// are not confirmed.
async fn owned(app: &App, id: Uuid, principal: &Principal) -> Result<OwnedMutexGuard<Session>, ApiError> {
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, format!("no session {id}"));
    let session = app.sessions.get(id).ok_or_else(not_found)?.lock_owned().await;
    if session.owner == principal.0.name { Ok(session) } else { Err(not_found()) }
}

async fn read_session(
    State(app): State<Arc<App>>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let session = owned(&app, id, &principal).await?;
    Ok(Json(&*session).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMessage {
    content: String,
}

async fn send_message(
    State(app): State<Arc<App>>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<Uuid>,
    Json(message): Json<NewMessage>,
) -> Result<Response, ApiError> {
    if message.content.trim().is_empty() {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "`content` is empty"));
    }
    let mut session = owned(&app, id, &principal).await?;
    let key = Arc::clone(&principal.0);
    let scope = hardened::audit::current_context().map(|context| context.session(id.to_string()));
    let answer = async { app.agent.respond(&mut session, message.content, &|tool| key.allows(tool)).await };
    let reply = match scope {
        Some(scope) => audit::scope(scope, answer).await,
        None => answer.await,
    };
    session.last_active = chrono::Utc::now();
    session.conversation.keep_latest(app.max_messages);
    Ok(Json(reply?).into_response())
}

async fn set_faults(
    State(app): State<Arc<App>>,
    Extension(principal): Extension<Principal>,
    Json(settings): Json<FaultSettings>,
) -> Result<Response, ApiError> {
    let permitted = principal.0.admin;
    trail::record(|| {
        AuditEvent::new(EventType::ConfigurationChange)
            .resource("faults")
            .detail("failure_percent", settings.failure_percent)
            .detail("latency_ms", settings.latency_ms)
            .outcome(trail::decision(permitted))
    });
    if !permitted {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "only an admin key may set faults"));
    }
    app.agent.tools.faults.set(settings).map_err(|message| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message))?;
    Ok(Json(app.agent.tools.faults.settings()).into_response())
}

async fn read_faults(State(app): State<Arc<App>>) -> Json<FaultSettings> {
    Json(app.agent.tools.faults.settings())
}
