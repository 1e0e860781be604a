//! The checks of the global rate limiters' Redis: `rate_limiter.<name>`, one per limiter, added to the
//! process-wide registry as limiters are made. The limiter reports how its backend is doing and this
//! module judges it, so the limiter knows nothing of health checks.

use super::check::{Component, HealthCheck};
use super::registry::HealthRegistry;
use super::status::CheckResult;
use crate::rate_limit::RateLimiter;
use crate::support::BoxFuture;

/// Degraded while Redis does not answer the limiter; healthy otherwise. Informational: the limiter
/// still decides, by its policy.
#[derive(Debug)]
struct RedisCheck {
    limiter: &'static RateLimiter,
}

impl HealthCheck for RedisCheck {
    fn check(&self) -> BoxFuture<'_, CheckResult> {
        let Some(backend) = self.limiter.backend_health() else {
            return Box::pin(std::future::ready(CheckResult::healthy()));
        };
        let result = if backend.available {
            CheckResult::healthy()
        } else {
            let policy =
                if backend.rejecting { "calls are refused" } else { "calls are limited to this replica's share" };
            CheckResult::degraded(format!("Redis is unavailable ({}); {policy}", backend.last_error))
        };
        Box::pin(std::future::ready(result.detail("backend_errors", backend.errors)))
    }
}

/// Registers a check for every global rate limiter made since the last time: run before each probe.
pub(super) fn register_new(registry: &HealthRegistry) {
    for limiter in crate::rate_limiters() {
        if limiter.backend_health().is_none() {
            continue;
        }
        let name = format!("rate_limiter.{}", limiter.name());
        if !registry.has(&name) {
            registry.register(Component::new(name, RedisCheck { limiter }).informational());
        }
    }
}
