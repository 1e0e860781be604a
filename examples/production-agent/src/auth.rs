//! API keys: `Authorization: Bearer <key>` (the scheme in any case) or `X-Api-Key: <key>`. A request that
//! passes carries its [`Principal`] and runs in an audit scope naming it, so every event it causes says who
//! caused it; each is audited as an `AuthenticationAttempt` naming the route, never the raw path.
//!
//! Failures are limited per client address and audited in aggregate (see [`failures`]): a flood of them
//! is answered 429 and costs the audit trail one event per address and interval.

mod failures;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hardened::audit::{self, AuditEvent, AuditOutcome, EventType};
use hardened::clock::Clock;
use hardened::http::UNMATCHED_ROUTE;

use self::failures::{Admission, FailedAttempts, FailureLimits, FailureSummary};
use crate::settings::{AuthSettings, KeySettings, Secret};
use crate::trail;

/// Who is calling: the key's settings.
#[derive(Debug, Clone)]
pub(crate) struct Principal(pub(crate) Arc<KeySettings>);

/// The keys that may call the service.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyRing {
    keys: Vec<(Secret, Principal)>,
}

impl KeyRing {
    pub(crate) fn new(keys: &[KeySettings]) -> KeyRing {
        let keys = keys
            .iter()
            .filter_map(|settings| Some((settings.secret()?, Principal(Arc::new(settings.clone())))))
            .collect();
        KeyRing { keys }
    }

    /// The principal holding `presented`. Every key is compared, each in time that depends only on the
    /// lengths, so that timing does not tell how much of a key was right.
    fn find(&self, presented: &str) -> Option<&Principal> {
        let mut found = None;
        for (secret, principal) in &self.keys {
            if secret.matches(presented) {
                found = Some(principal);
            }
        }
        found
    }
}

/// The keys, and the failed attempts of each client address.
#[derive(Debug)]
pub(crate) struct Authenticator {
    keys: KeyRing,
    failures: FailedAttempts,
}

impl Authenticator {
    pub(crate) fn new(keys: &[KeySettings], settings: &AuthSettings) -> Result<Authenticator, String> {
        let limits = FailureLimits {
            per_address: u64::from(settings.failures_per_address),
            interval: settings.failure_interval()?,
            capacity: settings.tracked_addresses,
        };
        Ok(Authenticator { keys: KeyRing::new(keys), failures: FailedAttempts::new(limits, Clock::system()) })
    }

    /// Audits the failures of the intervals that have ended; every second, until the process ends. At
    /// shutdown, [`Authenticator::report_all_failures`] reports the rest.
    pub(crate) async fn report_failures(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            record_failures(self.failures.ended());
        }
    }

    /// Audits every failure not yet reported, the intervals in course included.
    pub(crate) fn report_all_failures(&self) {
        record_failures(self.failures.drain());
    }
}

fn record_failures(summaries: Vec<FailureSummary>) {
    for summary in summaries {
        trail::record(|| {
            AuditEvent::new(EventType::AuthenticationAttempt)
                .ip_address(summary.address)
                .resource(summary.route)
                .outcome(AuditOutcome::Failure)
                .outcome_details(summary.reason)
                .detail(audit::ATTEMPTS_DETAIL, summary.attempts)
                .detail("refused", summary.refused)
                .detail("since", summary.since.to_rfc3339())
        });
    }
}

/// The key a request presents: the token of a `Bearer` authorization (RFC 9110 makes the scheme
/// case-insensitive), else `X-Api-Key`; an authorization of another scheme, such as a proxy's `Basic`,
/// does not hide `X-Api-Key`.
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers.get(header::AUTHORIZATION).and_then(|value| value.to_str().ok()).and_then(bearer_token);
    bearer.or_else(|| headers.get("x-api-key").and_then(|value| value.to_str().ok()).map(str::trim))
}

fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once([' ', '\t'])?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The client's address: the one the request layer derived (from `X-Forwarded-For` when the server
/// trusts its proxies), else the connection's peer.
fn client_address(request: &Request) -> Option<IpAddr> {
    audit::current_context()
        .and_then(|context| context.ip_address)
        .or_else(|| request.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(address)| address.ip()))
}

/// Lets a request through with its [`Principal`] when it presents a known key; answers 401 otherwise, and
/// 429 to an address that failed too often.
pub(crate) async fn authenticate(State(auth): State<Arc<Authenticator>>, mut request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
    let client = client_address(&request);
    let mut ended = Vec::new();
    if let Some(address) = client
        && let Admission::Refuse(retry_after) = auth.failures.admit(address, route, &mut ended)
    {
        record_failures(ended);
        return refuse(retry_after);
    }
    let presented = presented_key(request.headers());
    let Some(principal) = presented.and_then(|key| auth.keys.find(key)).cloned() else {
        let reason = if presented.is_none() { "no API key" } else { "unknown API key" };
        match client {
            Some(address) => auth.failures.failed(address, route, reason, &mut ended),
            // Without an address there is nothing to limit or aggregate by.
            None => trail::record(|| {
                AuditEvent::new(EventType::AuthenticationAttempt)
                    .resource(route)
                    .outcome(AuditOutcome::Failure)
                    .outcome_details(reason)
            }),
        }
        record_failures(ended);
        let body = axum::Json(serde_json::json!({ "error": "a valid API key is required" }));
        return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], body).into_response();
    };
    record_failures(ended);
    trail::record(|| {
        let event = AuditEvent::new(EventType::AuthenticationAttempt).resource(route).user_id(principal.0.name.clone());
        match client {
            Some(address) => event.ip_address(address),
            None => event,
        }
    });
    let mut context = audit::current_context().unwrap_or_default();
    context.user_id = Some(principal.0.name.clone());
    context.ip_address = client;
    request.extensions_mut().insert(principal);
    audit::scope(context, next.run(request)).await
}

fn refuse(retry_after: Duration) -> Response {
    let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    let body = axum::Json(serde_json::json!({
        "error": "too many failed authentications from this address; retry later"
    }));
    let mut response = (StatusCode::TOO_MANY_REQUESTS, body).into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(name, value)| (name.parse().expect("a name"), HeaderValue::from_static(value))).collect()
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_other_schemes_leave_x_api_key() {
        for value in ["Bearer k", "bearer k", "BEARER k", "Bearer  k ", "bEaReR\tk"] {
            assert_eq!(presented_key(&headers(&[("authorization", value)])), Some("k"), "{value}");
        }
        let basic = headers(&[("authorization", "Basic cHJveHk6c2VjcmV0"), ("x-api-key", "k")]);
        assert_eq!(presented_key(&basic), Some("k"));
        assert_eq!(presented_key(&headers(&[("authorization", "Bearer")])), None);
        assert_eq!(presented_key(&headers(&[("authorization", "Bearerk")])), None);
    }

    #[test]
    fn no_key_type_prints_a_raw_key() {
        let settings = KeySettings {
            name: "alice".to_owned(),
            key: Some(Secret::new("planted-4711")),
            key_env: None,
            tools: vec!["*".to_owned()],
            admin: true,
        };
        let ring = KeyRing::new(std::slice::from_ref(&settings));
        let principal = ring.find("planted-4711").expect("the key is known").clone();
        for printed in [format!("{settings:?}"), format!("{ring:?}"), format!("{principal:?}")] {
            assert!(!printed.contains("planted-4711"), "{printed}");
            assert!(printed.contains("[redacted]"), "{printed}");
        }
    }
}
