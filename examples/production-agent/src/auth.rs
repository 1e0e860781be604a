//! API keys: `Authorization: Bearer <key>` or `X-Api-Key: <key>`. Every attempt is an audited
//! `AuthenticationAttempt`; a request that passes carries its [`Principal`] and runs in an audit scope
//! naming it, so every event it causes says who caused it.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hardened::audit::{self, AuditContext, AuditEvent, AuditOutcome, EventType};

use crate::settings::KeySettings;
use crate::trail;

/// Who is calling: the key's settings.
#[derive(Debug, Clone)]
pub(crate) struct Principal(pub(crate) Arc<KeySettings>);

/// The keys that may call the service.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyRing {
    keys: Vec<(String, Principal)>,
}

impl KeyRing {
    pub(crate) fn new(keys: &[KeySettings]) -> KeyRing {
        let keys = keys
            .iter()
            .filter_map(|settings| Some((settings.secret()?, Principal(Arc::new(settings.clone())))))
            .collect();
        KeyRing { keys }
    }

    /// The principal holding `presented`. Every key is compared, in time that depends only on the lengths,
    /// so that timing does not tell how much of a key was right.
    fn find(&self, presented: &str) -> Option<&Principal> {
        let mut found = None;
        for (secret, principal) in &self.keys {
            if constant_time_eq(secret.as_bytes(), presented.as_bytes()) {
                found = Some(principal);
            }
        }
        found
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0_u8, |differ, (x, y)| differ | (x ^ y)) == 0
}

fn presented_key(request: &Request) -> Option<&str> {
    let headers = request.headers();
    if let Some(bearer) = headers.get("authorization").and_then(|value| value.to_str().ok()) {
        return bearer.strip_prefix("Bearer ").map(str::trim);
    }
    headers.get("x-api-key").and_then(|value| value.to_str().ok()).map(str::trim)
}

/// Lets a request through with its [`Principal`] when it presents a known key; answers 401 otherwise.
pub(crate) async fn authenticate(State(keys): State<Arc<KeyRing>>, mut request: Request, next: Next) -> Response {
    let client = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(address)| address.ip());
    let presented = presented_key(&request);
    let principal = presented.and_then(|key| keys.find(key)).cloned();
    trail::record(|| {
        let mut event = AuditEvent::new(EventType::AuthenticationAttempt).resource(request.uri().path().to_owned());
        if let Some(ip) = client {
            event = event.ip_address(ip);
        }
        match &principal {
            Some(principal) => event.user_id(principal.0.name.clone()),
            None if presented.is_none() => event.outcome(AuditOutcome::Failure).outcome_details("no API key"),
            None => event.outcome(AuditOutcome::Failure).outcome_details("unknown API key"),
        }
    });
    let Some(principal) = principal else {
        let body = axum::Json(serde_json::json!({ "error": "a valid API key is required" }));
        return (StatusCode::UNAUTHORIZED, [("www-authenticate", "Bearer")], body).into_response();
    };
    let mut context = AuditContext::user(principal.0.name.clone());
    if let Some(ip) = client {
        context = context.ip(ip);
    }
    request.extensions_mut().insert(principal);
    audit::scope(context, next.run(request)).await
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn keys_compare_by_every_byte() {
        assert!(constant_time_eq(b"dev-key", b"dev-key"));
        assert!(!constant_time_eq(b"dev-key", b"dev-kez"));
        assert!(!constant_time_eq(b"dev-key", b"dev-key-2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
