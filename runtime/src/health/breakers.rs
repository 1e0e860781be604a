//! The circuit-breaker check: a breaker that is not closed means a dependency is being cut off.

use serde_json::{Map, Value};

use super::check::HealthCheck;
use super::status::CheckResult;
use crate::breaker::BreakerState;
use crate::support::BoxFuture;

/// Degraded while any breaker of the process ([`crate::breakers`]) is open, forced open or half-open
/// (probing a dependency it does not trust yet); healthy otherwise. A breaker cutting off a dependency is
/// the service protecting itself, not failing, so the global registry holds this check as informational.
/// The details list every breaker's state.
#[derive(Debug, Clone, Copy, Default)]
pub struct BreakerCheck;

impl HealthCheck for BreakerCheck {
    fn check(&self) -> BoxFuture<'_, CheckResult> {
        let mut states = Map::new();
        let mut cutting_off = Vec::new();
        for breaker in crate::breakers() {
            let state = breaker.state();
            if matches!(state, BreakerState::Open | BreakerState::ForcedOpen | BreakerState::HalfOpen) {
                cutting_off.push(format!("{} ({state})", breaker.name()));
            }
            states.insert(breaker.name().to_owned(), Value::from(state.as_str()));
        }
        let result = if cutting_off.is_empty() {
            CheckResult::healthy()
        } else {
            CheckResult::degraded(format!("circuit breakers not closed: {}", cutting_off.join(", ")))
        };
        Box::pin(std::future::ready(result.detail("breakers", states)))
    }
}
