//! `agent-server audit verify` and `agent-server audit report`: the audit trail the server writes, read
//! back from the JSONL file, or from `PostgreSQL` when `DATABASE_URL` is set.

use std::error::Error;
use std::time::Duration;

use chrono::Utc;
use hardened::audit::{self, ReportOptions, SecurityReport, Verification};

use crate::settings::Settings;

fn database() -> Option<String> {
    std::env::var("DATABASE_URL").ok().filter(|url| !url.is_empty())
}

async fn pool(url: &str, settings: &Settings) -> Result<sqlx::PgPool, sqlx::Error> {
    let mut options: sqlx::postgres::PgConnectOptions = url.parse()?;
    if let Some(schema) = &settings.agent.audit.schema {
        options = audit::postgres_in_schema(options, schema);
    }
    sqlx::postgres::PgPoolOptions::new().max_connections(2).connect_with(options).await
}

/// Verifies every stream's hash chain; fails when one is broken.
pub(crate) async fn verify(settings: &Settings) -> Result<(), Box<dyn Error>> {
    let (verification, source): (Verification, String) = if let Some(url) = database() {
        (audit::verify_postgres_all(&pool(&url, settings).await?).await?, "PostgreSQL".to_owned())
    } else {
        let path = &settings.agent.audit.path;
        (audit::verify_jsonl(path)?, path.display().to_string())
    };
    match &verification.problem {
        None => {
            println!(
                "{source}: {} records in {} streams; every chain verifies",
                verification.records, verification.streams
            );
            if let Some(torn) = &verification.torn_tail {
                println!(
                    "note: the last line ({torn:?}) was cut short by a writer that stopped; it was never acknowledged"
                );
            }
            Ok(())
        }
        Some(problem) => Err(format!("{source}: the audit trail does not verify: {problem}").into()),
    }
}

/// The security report of the last `since`, as a table or as JSON.
pub(crate) async fn report(settings: &Settings, since: Duration, json: bool) -> Result<(), Box<dyn Error>> {
    let to = Utc::now();
    let from = to - chrono::Duration::from_std(since)?;
    let options = ReportOptions::default();
    let report = match database() {
        Some(url) => SecurityReport::from_postgres(&pool(&url, settings).await?, from..to, &options).await?,
        None => SecurityReport::from_jsonl(&settings.agent.audit.path, from..to, &options)?,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}
