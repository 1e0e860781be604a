//! Who may call the operations endpoints: a bearer token when one is set; without one, callers on a
//! loopback listener only, unless the operator allowed more explicitly.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Who may call the admin listener's operations endpoints (see [`admin_router`](super::admin_router)).
///
/// | token | listener address | operations endpoints |
/// | --- | --- | --- |
/// | set | any | callers presenting `Authorization: Bearer <token>`; others `401` |
/// | none | loopback (`127.0.0.0/8`, `::1`) | anyone who can reach it: processes on the host |
/// | none | any other | no one (`403`), unless [`allow_unauthenticated`](Self::allow_unauthenticated) |
///
/// The probes and `/metrics` are never behind it. Its `Debug` does not show the token.
#[derive(Clone, Default)]
pub struct AdminAccess {
    token: Option<Arc<str>>,
    unauthenticated: bool,
}

impl fmt::Debug for AdminAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminAccess")
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("unauthenticated", &self.unauthenticated)
            .finish()
    }
}

impl AdminAccess {
    /// No token, loopback only.
    #[must_use]
    pub fn new() -> AdminAccess {
        AdminAccess::default()
    }

    /// As the [`[server]` section](crate::config::ServerSettings) of the configuration in force says:
    /// `admin_token` and `admin_unauthenticated`.
    #[must_use]
    pub fn configured() -> AdminAccess {
        let server = crate::config::current().server.clone();
        let access = AdminAccess::new().allow_unauthenticated(server.admin_unauthenticated.unwrap_or(false));
        match server.admin_token {
            Some(token) => access.token(token),
            None => access,
        }
    }

    /// Requires `Authorization: Bearer <token>` on the operations endpoints. An empty token is no token.
    #[must_use]
    pub fn token(mut self, token: impl AsRef<str>) -> AdminAccess {
        let token = token.as_ref().trim();
        self.token = (!token.is_empty()).then(|| Arc::from(token));
        self
    }

    /// Whether, without a token, the operations endpoints answer on a listener that is not on a loopback
    /// address: for a network the operator trusts (a pod's own port behind a network policy, say).
    #[must_use]
    pub fn allow_unauthenticated(mut self, allow: bool) -> AdminAccess {
        self.unauthenticated = allow;
        self
    }

    /// Whether a token is set.
    #[must_use]
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// The rule for a listener on `address`.
    pub(super) fn decide(self, address: SocketAddr) -> Rule {
        match self.token {
            Some(token) => Rule::Bearer(token),
            None if address.ip().is_loopback() || self.unauthenticated => Rule::Open,
            None => {
                tracing::warn!(
                    target: "hardened::http",
                    %address,
                    "the admin listener is not on a loopback address and has no token: its operations endpoints \
                     (/guards, /config, /loggers) answer 403; set [server] admin_token (HARDENED_SERVER__ADMIN_TOKEN) \
                     or admin_unauthenticated = true"
                );
                Rule::Closed
            }
        }
    }
}

/// What the operations endpoints of one listener require.
#[derive(Debug, Clone)]
pub(super) enum Rule {
    Open,
    Bearer(Arc<str>),
    Closed,
}

pub(super) async fn check(State(rule): State<Rule>, request: Request, next: Next) -> Response {
    match &rule {
        Rule::Open => next.run(request).await,
        Rule::Bearer(token) if presents(&request, token) => next.run(request).await,
        Rule::Bearer(_) => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"admin\""))],
            "the operations endpoints need `Authorization: Bearer <admin token>`\n",
        )
            .into_response(),
        Rule::Closed => (
            StatusCode::FORBIDDEN,
            "the operations endpoints are off: the admin listener is not on a loopback address and has no token; set \
             [server] admin_token (HARDENED_SERVER__ADMIN_TOKEN), or admin_unauthenticated = true\n",
        )
            .into_response(),
    }
}

/// Whether `request` carries `Authorization: Bearer <token>`.
fn presents(request: &Request, token: &str) -> bool {
    let Some(presented) = request.headers().get(header::AUTHORIZATION).map(HeaderValue::as_bytes) else {
        return false;
    };
    let Some(scheme) = presented.get(..7) else { return false };
    scheme.eq_ignore_ascii_case(b"bearer ") && same(presented.get(7..).unwrap_or_default(), token.as_bytes())
}

/// Whether `a` and `b` are equal, in a time that depends on their lengths only, so that how long a wrong
/// token takes to refuse does not tell how much of it was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    let mut difference = a.len() ^ b.len();
    for index in 0..a.len().max(b.len()) {
        let (x, y) = (a.get(index).copied().unwrap_or(0), b.get(index).copied().unwrap_or(0));
        difference |= usize::from(x ^ y);
    }
    std::hint::black_box(difference) == 0
}

/// Operations answers are of the moment: no cache in between may keep one.
pub(super) fn no_store() -> [(header::HeaderName, &'static str); 1] {
    [(header::CACHE_CONTROL, "no-store")]
}

#[cfg(test)]
mod tests {
    use super::same;

    #[test]
    fn tokens_are_equal_only_when_every_byte_and_the_length_match() {
        assert!(same(b"s3cret", b"s3cret"));
        assert!(!same(b"s3cret", b"s3cres"));
        assert!(!same(b"s3cret", b"s3cret!"));
        assert!(!same(b"", b"s3cret"));
        assert!(same(b"", b""));
    }
}
