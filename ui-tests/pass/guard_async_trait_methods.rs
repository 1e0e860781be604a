//! Guards on `#[async_trait]` methods: on one method inside the impl, on a whole impl that
//! `#[async_trait]` rewrote first, and on one it rewrites after; retries re-run the boxed future's body.
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use hardened::{Rejected, hardened};

#[derive(Debug, PartialEq, thiserror::Error)]
enum DbError {
    #[error(transparent)]
    Refused(#[from] Rejected),
    #[error("deadlock detected")]
    Deadlock,
}

#[async_trait]
trait Repository {
    async fn find(&self, id: u64) -> Result<String, DbError>;
    async fn lock(&self, hold: Duration) -> Result<(), DbError>;
}

struct Db {
    runs: AtomicU32,
}

#[async_trait]
impl Repository for Db {
    #[hardened(breaker = "db", retry(attempts = 2, backoff = "1ms"), timeout = "1s")]
    async fn find(&self, id: u64) -> Result<String, DbError> {
        let run = self.runs.fetch_add(1, Ordering::Relaxed) + 1;
        tokio::task::yield_now().await;
        if run < 2 { Err(DbError::Deadlock) } else { Ok(format!("user {id}")) }
    }

    #[hardened(timeout = "10ms")]
    async fn lock(&self, hold: Duration) -> Result<(), DbError> {
        tokio::time::sleep(hold).await;
        Ok(())
    }
}

struct Replica;

#[async_trait]
#[hardened(bulkhead = 2, timeout = "1s")]
impl Repository for Replica {
    async fn find(&self, id: u64) -> Result<String, DbError> {
        Ok(format!("replica {id}"))
    }

    async fn lock(&self, _hold: Duration) -> Result<(), DbError> {
        Ok(())
    }
}

struct Cache;

#[hardened(rate = 1000, retry = 1)]
#[async_trait]
impl Repository for Cache {
    async fn find(&self, id: u64) -> Result<String, DbError> {
        tokio::task::yield_now().await;
        Ok(format!("cached {id}"))
    }

    async fn lock(&self, _hold: Duration) -> Result<(), DbError> {
        Ok(())
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime");
    runtime.block_on(async {
        let db = Db { runs: AtomicU32::new(0) };
        assert_eq!(db.find(7).await.as_deref(), Ok("user 7"));
        assert_eq!(db.runs.load(Ordering::Relaxed), 2, "the deadlock was retried");
        assert_eq!(
            db.lock(Duration::from_secs(5)).await,
            Err(DbError::Refused(Rejected::TimedOut { after: Duration::from_millis(10) }))
        );
        let repositories: [&dyn Repository; 2] = [&Replica, &Cache];
        for repository in repositories {
            assert!(repository.find(1).await.is_ok());
            assert_eq!(repository.lock(Duration::ZERO).await, Ok(()));
        }
    });
    assert_eq!(hardened::breaker("db").counts().failure, 1);
    let bulkheads = hardened::sites()
        .iter()
        .filter(|site| {
            site.guards().and_then(|guards| guards.bulkhead()).is_some_and(|bulkhead| bulkhead.config().max == 2)
        })
        .count();
    assert_eq!(bulkheads, 2, "both of `Replica`'s methods have the block's bulkhead");
}
