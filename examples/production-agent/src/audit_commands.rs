//! `agent-server audit verify`, `audit report` and `audit keygen`: the audit trail the server writes,
//! read back from the JSONL file (and its signed checkpoints), or from `PostgreSQL` when `DATABASE_URL`
//! is set.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use hardened::audit::{
    self, AuditPublicKey, AuditSigningKey, ReportOptions, SecurityReport, Verification, VerifyOptions,
};

use crate::settings::{Settings, Signing};

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

/// The checkpoint file of the log at `log`: `<log>.checkpoints`.
pub(crate) fn checkpoint_file(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".checkpoints");
    PathBuf::from(name)
}

/// The public key file beside a private key file: `signing.pem` gives `signing.pub.pem`.
fn public_key_file(private: &Path) -> PathBuf {
    if private.extension().is_some_and(|extension| extension == "pem") {
        private.with_extension("pub.pem")
    } else {
        let mut name = private.as_os_str().to_owned();
        name.push(".pub.pem");
        PathBuf::from(name)
    }
}

/// Makes a key pair: the private key in `file` (0600, its folder made 0700) and the public key beside it.
pub(crate) fn write_key_pair(file: &Path) -> Result<AuditSigningKey, Box<dyn Error>> {
    if let Some(parent) = file.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(parent)?;
    }
    let key = AuditSigningKey::generate()?;
    key.write_pem_file(file)?;
    key.public_key().write_pem_file(public_key_file(file))?;
    Ok(key)
}

/// `audit keygen --out FILE`.
pub(crate) fn keygen(file: &Path) -> Result<(), Box<dyn Error>> {
    let key = write_key_pair(file)?;
    println!("private key: {} (0600; keep it off the audit log's storage)", file.display());
    println!("public key:  {} (give it to whoever verifies)", public_key_file(file).display());
    println!("key id:      {}", key.key_id());
    Ok(())
}

/// The public keys to verify with: those given, else the configured ones, else (in development) the
/// development key's.
fn public_keys(settings: &Settings, given: &[PathBuf]) -> Result<Vec<AuditPublicKey>, Box<dyn Error>> {
    let audit = &settings.agent.audit;
    let mut files: Vec<PathBuf> = if given.is_empty() { audit.public_key_files.clone() } else { given.to_vec() };
    if files.is_empty() && audit.signing == Signing::Development {
        let development = public_key_file(&audit.development_key_file());
        if development.exists() {
            println!("note: verifying with the development key {}", development.display());
            files.push(development);
        }
    }
    Ok(files.iter().map(AuditPublicKey::read_pem_file).collect::<Result<_, _>>()?)
}

/// Verifies every stream's hash chain and, with public keys, the signed checkpoints; fails when either
/// does not verify.
pub(crate) async fn verify(
    settings: &Settings,
    given_keys: &[PathBuf],
    checkpoints: Option<&Path>,
) -> Result<(), Box<dyn Error>> {
    let keys = public_keys(settings, given_keys)?;
    let path = &settings.agent.audit.path;
    let mut options = VerifyOptions::new();
    for key in &keys {
        options = options.public_key(key.clone());
    }
    let database = database();
    // The server signs the checkpoints of a JSONL log into `<log>.checkpoints`, and those of PostgreSQL
    // into its table `audit_checkpoint`, which the verifier reads; a file given is read as well.
    if let Some(file) = checkpoints {
        options = options.checkpoint_file(file);
    } else if database.is_none() {
        options = options.checkpoint_file(checkpoint_file(path));
    }
    let (verification, source): (Verification, String) = if let Some(url) = database {
        (audit::verify_postgres_all_with(&pool(&url, settings).await?, &options).await?, "PostgreSQL".to_owned())
    } else {
        (audit::verify_jsonl_with(path, &options)?, path.display().to_string())
    };
    match &verification.problem {
        None => {
            println!(
                "{source}: {} records in {} streams; every chain verifies",
                verification.records, verification.streams
            );
            if keys.is_empty() {
                println!(
                    "note: no checkpoint was checked, so this proves the log consistent, not authentic: whoever can \
                     write it could have rewritten it whole; give the public key with --public-key"
                );
            } else {
                let audit = &settings.agent.audit;
                println!(
                    "{} signed checkpoints verify; {} records are sealed by a checkpoint, {} come after the last \
                     checkpoint of their stream (not sealed: at most {} records or {} of a stream can be cut \
                     undetected)",
                    verification.checkpoints,
                    verification.sealed,
                    verification.unsealed,
                    audit.checkpoint_every_events,
                    audit.checkpoint_every
                );
            }
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

/// The start of a report window `since` before `to`: a clear error for a window reaching before the
/// earliest time representable.
fn window_start(to: chrono::DateTime<Utc>, since: Duration) -> Result<chrono::DateTime<Utc>, String> {
    chrono::Duration::from_std(since).ok().and_then(|since| to.checked_sub_signed(since)).ok_or_else(|| {
        format!(
            "--since {} reaches back before the earliest time representable; allowed: a duration up to about \
             260,000 years, such as `24h` or `30d`",
            humantime::format_duration(since)
        )
    })
}

/// The security report of the last `since`, as a table or as JSON.
pub(crate) async fn report(settings: &Settings, since: Duration, json: bool) -> Result<(), Box<dyn Error>> {
    let to = Utc::now();
    let from = window_start(to, since)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_window_before_the_earliest_time_is_an_error_not_a_panic() {
        let since = humantime::parse_duration("280000y").expect("humantime reads it");
        let error = window_start(Utc::now(), since).expect_err("too far back");
        assert!(error.starts_with("--since 280000years reaches back"), "{error}");
        assert!(window_start(Utc::now(), Duration::from_hours(1)).is_ok());
    }

    #[test]
    fn the_public_key_file_is_beside_the_private_one() {
        assert_eq!(public_key_file(Path::new("keys/signing.pem")), Path::new("keys/signing.pub.pem"));
        assert_eq!(public_key_file(Path::new("keys/signing")), Path::new("keys/signing.pub.pem"));
    }
}
