//! Why a guard refused a call.

use std::time::Duration;

/// A call refused by a guard before (or instead of) running the function's body.
///
/// A function guarded by `breaker`, `rate`, `concurrency`, `bulkhead` or `timeout` returns `Result<T, E>` with
/// `E: From<Rejected>`, so a refusal reaches the caller as an ordinary error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejected {
    /// The circuit breaker is open (or half-open with every probe taken).
    #[error("circuit breaker `{name}` is open")]
    CircuitOpen {
        /// The breaker's name.
        name: &'static str,
    },
    /// The rate limiter had no token; one will be available after `retry_after`.
    #[error("rate limiter `{name}` is exhausted; retry after {retry_after:?}")]
    RateLimited {
        /// The limiter's name.
        name: &'static str,
        /// How long until a call would be admitted.
        retry_after: Duration,
    },
    /// The call asked a weighted rate limiter for more tokens than its bucket holds (its burst): it could
    /// never be admitted, and is refused at once instead of waiting for ever.
    #[error("rate limiter `{name}` cannot grant {cost} tokens at once; its burst is {burst}")]
    CostOverBurst {
        /// The limiter's name.
        name: &'static str,
        /// The tokens the call asked for.
        cost: u64,
        /// The most tokens the bucket holds.
        burst: u32,
    },
    /// The concurrency limit gave the call no turn within its wait.
    #[error("concurrency limit `{name}` gave no turn within its wait")]
    ConcurrencyLimited {
        /// The concurrency limit's name.
        name: &'static str,
    },
    /// The bulkhead had no free permit (within its wait, if it has one).
    #[error("bulkhead `{name}` is full")]
    BulkheadFull {
        /// The bulkhead's name.
        name: &'static str,
    },
    /// The call took longer than its timeout and was abandoned.
    #[error("timed out after {after:?}")]
    TimedOut {
        /// The timeout.
        after: Duration,
    },
}

impl Rejected {
    /// The guard that refused: `breaker`, `rate_limiter`, `concurrency`, `bulkhead` or `timeout` (the `guard`
    /// metric label).
    #[must_use]
    pub fn guard(&self) -> &'static str {
        match self {
            Rejected::CircuitOpen { .. } => "breaker",
            Rejected::RateLimited { .. } | Rejected::CostOverBurst { .. } => "rate_limiter",
            Rejected::ConcurrencyLimited { .. } => "concurrency",
            Rejected::BulkheadFull { .. } => "bulkhead",
            Rejected::TimedOut { .. } => "timeout",
        }
    }

    /// The refusing guard's name; a timeout belongs to its function and has none.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Rejected::CircuitOpen { name }
            | Rejected::RateLimited { name, .. }
            | Rejected::CostOverBurst { name, .. }
            | Rejected::ConcurrencyLimited { name }
            | Rejected::BulkheadFull { name } => name,
            Rejected::TimedOut { .. } => "",
        }
    }

    /// How long to wait before trying again, when the guard knows.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Rejected::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

/// A refusal as an HTTP answer: 429 with `Retry-After` for a rate limit, 503 with `Retry-After` for an
/// open breaker, a concurrency limit or a bulkhead, 504 for a timeout, and 413 (no `Retry-After`: trying
/// again cannot help) for a cost over a weighted limiter's burst; the body is JSON,
/// `{"error": "<the refusal>", "guard": "rate_limiter", "name": "llm"}`.
///
/// `Retry-After` is the rate limiter's exact wait rounded up to whole seconds; the other guards cannot
/// know when a permit frees, and say one second.
#[cfg(feature = "axum")]
impl axum::response::IntoResponse for Rejected {
    fn into_response(self) -> axum::response::Response {
        use axum::http::{HeaderValue, StatusCode, header};

        let status = match self {
            Rejected::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Rejected::TimedOut { .. } => StatusCode::GATEWAY_TIMEOUT,
            Rejected::CostOverBurst { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Rejected::CircuitOpen { .. } | Rejected::ConcurrencyLimited { .. } | Rejected::BulkheadFull { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        let retry_after = match self {
            Rejected::TimedOut { .. } | Rejected::CostOverBurst { .. } => None,
            _ => Some(self.retry_after().map_or(1, |wait| wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)),
        };
        let body = serde_json::json!({ "error": self.to_string(), "guard": self.guard(), "name": self.name() });
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
