//! A `PostgreSQL` schema of a test's own, for the tests that need a server.
//!
//! Every helper here panics, with the reason, when the server cannot do what the test needs: that is the
//! test failing.
#![allow(clippy::missing_panics_doc, reason = "the module says it once: a helper that cannot set up fails the test")]

use hardened::audit::{PostgresSink, migrate_postgres, postgres_in_schema};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, PgPool};

use super::database_url;

/// A schema of the test's own, with the audit tables migrated, dropped when the test ends (even by a panic).
#[derive(Debug)]
pub struct TestSchema {
    /// The schema's name.
    pub name: String,
    /// How to connect to the server, whatever the schema.
    pub options: PgConnectOptions,
    /// Connections whose search path is the schema.
    pub pool: PgPool,
}

impl TestSchema {
    /// A new schema, with the audit tables migrated.
    pub async fn new() -> TestSchema {
        let schema = TestSchema::empty().await;
        migrate_postgres(&schema.pool).await.expect("the migrations run");
        schema
    }

    /// The schema, without the tables.
    pub async fn empty() -> TestSchema {
        let url = database_url();
        let options: PgConnectOptions = url.parse().expect("DATABASE_URL is a PostgreSQL URL");
        let name = format!("hardened_test_{}", uuid::Uuid::now_v7().simple());
        let mut admin = admin_connection(&options).await;
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {name}"))).execute(&mut admin).await.expect("CREATE SCHEMA");
        let pool = PgPoolOptions::new()
            .max_connections(12)
            .connect_with(postgres_in_schema(options.clone(), &name))
            .await
            .expect("cannot connect to DATABASE_URL");
        TestSchema { name, options, pool }
    }

    /// A sink writing to this schema.
    #[must_use]
    pub fn sink(&self) -> PostgresSink {
        PostgresSink::new(self.options.clone()).schema(&self.name)
    }

    /// Runs one statement, which must succeed.
    pub async fn execute(&self, sql: String) {
        sqlx::query(AssertSqlSafe(sql.clone()))
            .execute(&self.pool)
            .await
            .unwrap_or_else(|error| panic!("{sql}: {error}"));
    }

    /// The number one query returns.
    pub async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.pool).await.expect(sql)
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let (options, name) = (self.options.clone(), self.name.clone());
        // On a runtime of its own: the test's may be gone, or busy unwinding.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let mut admin = admin_connection(&options).await;
                sqlx::query(AssertSqlSafe(format!("DROP SCHEMA {name} CASCADE"))).execute(&mut admin).await.map(drop)
            })?;
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test schema {}", self.name);
        }
    }
}

/// A connection of its own, for what the test does to the schema as a whole.
async fn admin_connection(options: &PgConnectOptions) -> sqlx::PgConnection {
    <sqlx::PgConnection as sqlx::Connection>::connect_with(options)
        .await
        .unwrap_or_else(|error| panic!("cannot connect to DATABASE_URL: {error}"))
}
