//! The `PostgreSQL` check: a real query through the application's sqlx pool.

use sqlx::PgPool;

use super::check::HealthCheck;
use super::status::CheckResult;
use crate::support::BoxFuture;

/// Runs `SELECT 1` through a `PostgreSQL` pool: healthy when it answers, unhealthy with the error when it does not or
/// when the pool is closed. The details give the pool's open and idle connections. A saturated pool
/// makes the query wait for a connection, and the registry's timeout turns that wait into unhealthy:
/// give the component a timeout that fits the pool's acquire timeout.
#[derive(Debug, Clone)]
pub struct PostgresCheck {
    pool: PgPool,
}

impl PostgresCheck {
    /// A check through `pool` (a clone shares the pool's connections).
    #[must_use]
    pub fn new(pool: PgPool) -> PostgresCheck {
        PostgresCheck { pool }
    }
}

impl HealthCheck for PostgresCheck {
    fn check(&self) -> BoxFuture<'_, CheckResult> {
        Box::pin(async move {
            let result = if self.pool.is_closed() {
                CheckResult::unhealthy("the connection pool is closed")
            } else {
                match sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&self.pool).await {
                    Ok(1) => CheckResult::healthy(),
                    Ok(other) => CheckResult::unhealthy(format!("SELECT 1 returned {other}")),
                    Err(error) => CheckResult::unhealthy(format!("SELECT 1 failed: {error}")),
                }
            };
            result.detail("connections", self.pool.size()).detail("idle", self.pool.num_idle())
        })
    }
}
