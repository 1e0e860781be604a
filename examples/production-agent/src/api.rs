//! The HTTP API: sessions and their messages, and the fault-injection admin endpoint. Every
//! authorization decision is audited as an `AuthorizationCheck` and made before a request's body is read.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Extension, FromRequest, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use hardened::Rejected;
use hardened::audit::{self, AuditEvent, AuditOutcome, EventType};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::agent::Agent;
use crate::auth::{Authenticator, Principal, authenticate};
use crate::model::ModelError;
use crate::sessions::{OpenSession, Sessions};
use crate::tools::FaultSettings;
use crate::trail;

/// What the handlers share.
#[derive(Debug)]
pub(crate) struct App {
    pub(crate) agent: Agent,
    pub(crate) sessions: Sessions,
}

/// The largest body of a request other than a message: the fault settings are a few bytes.
const SMALL_BODY_BYTES: usize = 16 * 1024;

/// The largest body of a message: its content at `max_message_bytes`, each byte escaped as JSON's longest
/// escape (`\u0000`, six bytes), and room for the rest of the object.
fn message_body_limit(max_message_bytes: usize) -> usize {
    max_message_bytes.saturating_mul(6).saturating_add(1024)
}

/// The API routes, behind API-key authentication.
pub(crate) fn routes(app: Arc<App>, auth: Arc<Authenticator>) -> Router {
    let message_body = DefaultBodyLimit::max(message_body_limit(app.sessions.limits().message_bytes));
    Router::new()
        .route("/v1/sessions", post(open_session))
        .route("/v1/sessions/{id}", get(read_session).delete(close_session))
        .route("/v1/sessions/{id}/messages", post(send_message).layer(message_body).route_layer(messages_limit()))
        .route("/v1/admin/faults", put(set_faults).get(read_faults))
        // One `layer` call for both, the first of the pair outside (as `with_request_layers` says why).
        .layer((axum::middleware::from_fn_with_state(auth, authenticate), DefaultBodyLimit::max(SMALL_BODY_BYTES)))
        .with_state(app)
}

/// The guards of `POST /v1/sessions/{id}/messages`: the messages in flight at once over every key
/// (`[concurrency.messages]`), the rest queueing for their turn, and the messages in flight of each API key
/// (`[bulkhead.messages_per_key]`, keyed by the key's name), so that one caller cannot take every place;
/// either answers 503 with `Retry-After` when its wait runs out. A message holds its places for all its
/// model and tool calls, so this bounds the work in flight where the model's own limit
/// (`[concurrency.llm]`) bounds one call.
fn messages_limit() -> MessagesLimit {
    hardened::tower::GuardLayer::named("messages")
        .bulkhead("messages_per_key")
        .keyed_by(key_name as KeyOfRequest)
        .refusals_as_responses()
}

/// How a request's key is found: [`key_name`].
type KeyOfRequest = fn(&Request) -> Option<String>;

/// The layer of [`messages_limit`]: one attempt, refusals as responses, keyed by [`key_name`].
type MessagesLimit = hardened::tower::GuardLayer<
    hardened::tower::Once,
    hardened::tower::AsResponse,
    hardened::tower::ErrIsFailure,
    KeyOfRequest,
>;

/// The name of the API key a request was authenticated with, which authentication, the outer layer, put
/// in its extensions.
fn key_name(request: &Request) -> Option<String> {
    request.extensions().get::<Principal>().map(|principal| principal.0.name.clone())
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

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::JsonRejection) -> ApiError {
        ApiError::new(rejection.status(), rejection.body_text())
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
                // Whole seconds, rounded up: a client that waits as told finds the tokens there.
                retry_after: Some(
                    retry_after.as_secs().saturating_add(u64::from(retry_after.subsec_nanos() > 0)).max(1),
                ),
            },
            ModelError::Refused(Rejected::CostOverBurst { .. }) => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, message)
            }
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
    match app.sessions.open(&principal.0.name) {
        Ok(id) => {
            trail::record(|| AuditEvent::new(EventType::SessionStart).session_id(id.to_string()).resource("session"));
            (StatusCode::CREATED, Json(json!({ "id": id }))).into_response()
        }
        Err(limit) => {
            trail::record(|| {
                AuditEvent::new(EventType::SessionStart)
                    .resource("session")
                    .outcome(AuditOutcome::Denied)
                    .outcome_details(limit.to_string())
                    .detail("limit", limit.name())
            });
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, limit.to_string()).into_response()
        }
    }
}

/// The session `id` if `principal` owns it, decided without waiting for the session's lock; 404
/// otherwise, so that the ids of others' sessions are not confirmed. A refusal is audited as a denied
/// `AuthorizationCheck`, and so is a grant when `audit_grant` (a message's grant is its `UserMessage`).
fn authorize_session(
    app: &App,
    id: Uuid,
    principal: &Principal,
    action: &'static str,
    audit_grant: bool,
) -> Result<Arc<OpenSession>, ApiError> {
    let session = app.sessions.get(id);
    let refusal = match &session {
        None => Some("no such session"),
        Some(open) if open.owner != principal.0.name => Some("another key's session"),
        Some(_) => None,
    };
    if refusal.is_some() || audit_grant {
        trail::record(|| {
            let event = AuditEvent::new(EventType::AuthorizationCheck)
                .resource("session")
                .session_id(id.to_string())
                .detail("action", action)
                .outcome(trail::decision(refusal.is_none()));
            match refusal {
                Some(reason) => event.outcome_details(reason),
                None => event,
            }
        });
    }
    match session {
        Some(session) if refusal.is_none() => Ok(session),
        _ => Err(ApiError::new(StatusCode::NOT_FOUND, format!("no session {id}"))),
    }
}

async fn read_session(
    State(app): State<Arc<App>>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let open = authorize_session(&app, id, &principal, "read", true)?;
    let session = open.session.lock().await;
    Ok(Json(&*session).into_response())
}

/// Ends a session at its owner's request, audited as a `SessionEnd`: 204.
async fn close_session(
    State(app): State<Arc<App>>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    authorize_session(&app, id, &principal, "close", false)?;
    if app.sessions.close(id).is_some() {
        trail::record(|| {
            AuditEvent::new(EventType::SessionEnd)
                .session_id(id.to_string())
                .resource("session")
                .detail("reason", "closed")
        });
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMessage {
    content: String,
}

/// A message refused for its size, audited as a denied `UserMessage`.
fn too_large(id: Uuid, detail: &str, limit: usize) -> ApiError {
    let message = format!("{detail}; allowed: at most {limit} bytes (sessions.max_message_bytes)");
    trail::record(|| {
        AuditEvent::new(EventType::UserMessage)
            .session_id(id.to_string())
            .outcome(AuditOutcome::Denied)
            .outcome_details(detail.to_owned())
            .detail("limit", limit)
    });
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, message)
}

async fn send_message(
    State(app): State<Arc<App>>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<Uuid>,
    request: Request,
) -> Result<Response, ApiError> {
    let open = authorize_session(&app, id, &principal, "message", false)?;
    let limit = app.sessions.limits().message_bytes;
    let message = match Json::<NewMessage>::from_request(request, &()).await {
        Ok(Json(message)) => message,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(too_large(id, "the request body is over its limit", limit));
        }
        Err(rejection) => return Err(rejection.into()),
    };
    if message.content.len() > limit {
        return Err(too_large(id, &format!("the message has {} bytes", message.content.len()), limit));
    }
    if message.content.trim().is_empty() {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "`content` is empty"));
    }
    let mut session = open.session.lock().await;
    let key = Arc::clone(&principal.0);
    let scope = hardened::audit::current_context().map(|context| context.session(id.to_string()));
    let answer = async { app.agent.respond(&mut session, message.content, &key.name, &|tool| key.allows(tool)).await };
    let reply = match scope {
        Some(scope) => audit::scope(scope, answer).await,
        None => answer.await,
    };
    session.last_active = chrono::Utc::now();
    app.sessions.trim(&mut session.conversation);
    Ok(Json(reply?).into_response())
}

/// Whether `principal` may `action` the fault injection: admin keys only. Audited either way.
fn authorize_admin(principal: &Principal, action: &'static str) -> Result<(), ApiError> {
    let permitted = principal.0.admin;
    trail::record(|| {
        AuditEvent::new(EventType::AuthorizationCheck)
            .resource("faults")
            .detail("action", action)
            .outcome(trail::decision(permitted))
    });
    if permitted { Ok(()) } else { Err(ApiError::new(StatusCode::FORBIDDEN, "only an admin key may use the faults")) }
}

async fn set_faults(
    State(app): State<Arc<App>>,
    Extension(principal): Extension<Principal>,
    request: Request,
) -> Result<Response, ApiError> {
    authorize_admin(&principal, "set")?;
    let Json(settings) = Json::<FaultSettings>::from_request(request, &()).await?;
    let applied = app.agent.tools.faults.set(settings);
    trail::record(|| {
        let event = AuditEvent::new(EventType::ConfigurationChange)
            .resource("faults")
            .detail("failure_percent", settings.failure_percent)
            .detail("latency_ms", settings.latency_ms);
        match &applied {
            Ok(()) => event,
            Err(message) => event.outcome(AuditOutcome::Failure).outcome_details(message.clone()),
        }
    });
    applied.map_err(|message| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message))?;
    Ok(Json(app.agent.tools.faults.settings()).into_response())
}

async fn read_faults(
    State(app): State<Arc<App>>,
    Extension(principal): Extension<Principal>,
) -> Result<Json<FaultSettings>, ApiError> {
    authorize_admin(&principal, "read")?;
    Ok(Json(app.agent.tools.faults.settings()))
}
