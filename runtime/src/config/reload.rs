//! Reading the configuration again from where it was loaded: on request, on `SIGHUP`, or from the admin
//! listener; with what changed in the log and in the audit trail.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use serde::Serialize;

use super::provenance::values_in_force;
use super::{Config, ConfigError};
use crate::audit::{AuditEvent, AuditOutcome, EventType};

/// Where the configuration in force was read from, to read it from there again.
#[derive(Debug, Clone)]
pub(super) enum Source {
    /// The file `HARDENED_CONFIG` names, else `./hardened.toml`, else none ([`load`](super::load)).
    Discovered,
    /// A file the program named ([`load_file`](super::load_file)).
    File(PathBuf),
    /// Text the program gave ([`load_text`](super::load_text)): read again with the environment of now.
    Text { text: Arc<str>, origin: String },
}

static SOURCE: RwLock<Option<Source>> = RwLock::new(None);

/// One reload at a time, so that what each reports changed is its own doing.
static RELOADING: Mutex<()> = Mutex::new(());

/// Where the configuration in force was read from; [`Source::Discovered`] before any load.
pub(super) fn source() -> Source {
    SOURCE.read().unwrap_or_else(PoisonError::into_inner).clone().unwrap_or(Source::Discovered)
}

/// Reads the configuration from `source`, installs it and remembers `source` for the next reload; on an
/// error nothing changes.
pub(super) fn load_from(source: Source) -> Result<Arc<Config>, ConfigError> {
    let declared = super::declared_names();
    let (config, provenance) = super::read_from(&source, &declared)?;
    *SOURCE.write().unwrap_or_else(PoisonError::into_inner) = Some(source);
    Ok(super::finish_load(config, provenance, &declared))
}

/// A key whose value a reload changed, as [`effective_config`](super::effective_config) shows values
/// (secrets masked).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Change {
    /// The key path, such as `rate.llm.per_second`.
    pub key: String,
    /// The value before; `null` when the key was not set.
    pub from: Option<serde_json::Value>,
    /// The value now; `null` when the key is no longer set.
    pub to: Option<serde_json::Value>,
}

/// What a reload did.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Reloaded {
    /// The file read, or what the configuration text is called; `null` without one.
    pub file: Option<String>,
    /// The keys whose values changed, in key order; empty when the configuration is as it was.
    pub changes: Vec<Change>,
    /// The functions (`module::function`) whose duration histogram the configuration now in force
    /// changes (`[metrics.<name>]`), and which keep the one they have until the next start: every
    /// thread's metric cells are laid out by the histograms once calls start. Empty when none waits.
    pub histograms_at_next_start: Vec<String>,
}

/// [`reload`](super::reload), and what changed.
///
/// # Errors
///
/// The configuration's errors, as [`reload`](super::reload) returns them; then nothing changed.
pub fn reload_with_changes() -> Result<Reloaded, ConfigError> {
    let _one_at_a_time = RELOADING.lock().unwrap_or_else(PoisonError::into_inner);
    let before = values_in_force();
    let config = super::reload()?;
    let after = values_in_force();
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let changes = keys
        .into_iter()
        .filter(|key| before.get(*key) != after.get(*key))
        .map(|key| Change { key: key.clone(), from: before.get(key).cloned(), to: after.get(key).cloned() })
        .collect::<Vec<_>>();
    #[cfg(feature = "telemetry")]
    apply_filters(&config, &changes);
    // Read only to apply the filters, with the `telemetry` feature.
    drop(config);
    let mut histograms_at_next_start: Vec<String> =
        crate::metrics::histograms_pending().into_iter().map(crate::guards::histograms::function_path).collect();
    histograms_at_next_start.sort();
    Ok(Reloaded { file: super::provenance::origin(), changes, histograms_at_next_start })
}

/// A reload that changed `[telemetry] log_filter` or `trace_filter` changes the running filters, unless
/// `RUST_LOG` holds the log filter (it wins over the file, as at startup).
#[cfg(feature = "telemetry")]
fn apply_filters(config: &Config, changes: &[Change]) {
    let key_changed = |key: &str| changes.iter().any(|change| change.key == key);
    let log = config.telemetry.log_filter.as_deref().filter(|_| key_changed("telemetry.log_filter"));
    let log = log.filter(|_| std::env::var_os("RUST_LOG").is_none_or(|value| value.is_empty()));
    let trace = config.telemetry.trace_filter.as_deref().filter(|_| key_changed("telemetry.trace_filter"));
    if (log.is_some() || trace.is_some())
        && let Err(error) = crate::telemetry::set_filters(log, trace)
    {
        tracing::warn!(target: "hardened::config", %error, "the new log or trace filter was not applied");
    }
}

/// [`reload_with_changes`], with the outcome logged and audited as a
/// [`ConfigurationChange`](EventType::ConfigurationChange) event (`trigger` says what asked for it, such as
/// `SIGHUP`): on success the keys changed, their old and new values; on an error the error, and the
/// configuration in force stays.
///
/// # Errors
///
/// As [`reload_with_changes`].
pub fn reload_and_audit(trigger: &str) -> Result<Reloaded, ConfigError> {
    let result = reload_with_changes();
    let event = AuditEvent::new(EventType::ConfigurationChange).resource("configuration").detail("trigger", trigger);
    match &result {
        Ok(reloaded) => {
            let keys: Vec<&str> = reloaded.changes.iter().map(|change| change.key.as_str()).collect();
            tracing::info!(
                target: "hardened::config",
                trigger,
                file = reloaded.file.as_deref().unwrap_or("none"),
                changed = ?keys,
                histograms_at_next_start = ?reloaded.histograms_at_next_start,
                "configuration reloaded"
            );
            let changes = serde_json::to_value(&reloaded.changes).unwrap_or_default();
            let mut event = event
                .outcome(AuditOutcome::Success)
                .detail("file", reloaded.file.clone().unwrap_or_default())
                .detail("changes", changes);
            if !reloaded.histograms_at_next_start.is_empty() {
                event = event.detail("histograms_at_next_start", reloaded.histograms_at_next_start.clone());
            }
            crate::audit::emit(event);
        }
        Err(error) => {
            tracing::error!(
                target: "hardened::config",
                trigger,
                "configuration not reloaded, the configuration in force stays: {error}"
            );
            crate::audit::emit(event.outcome(AuditOutcome::Failure).outcome_details(error.to_string()));
        }
    }
    result
}

/// Reloads the configuration ([`reload_and_audit`]) on every `SIGHUP`, for the life of the process; a
/// bad configuration is logged and refused, and never stops the process. Call it once, inside a tokio
/// runtime (later calls do nothing). Elsewhere than Unix there is no `SIGHUP`, and it does nothing.
///
/// # Panics
///
/// Outside a tokio runtime, or if the signal handler cannot be installed.
pub fn reload_on_hangup() {
    #[cfg(unix)]
    {
        use std::sync::atomic::{AtomicBool, Ordering};
        use tokio::signal::unix::{SignalKind, signal};

        static LISTENING: AtomicBool = AtomicBool::new(false);
        if LISTENING.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut hangups = signal(SignalKind::hangup()).expect("the SIGHUP handler can be installed on a tokio runtime");
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                // Reading a file and retuning guards is short, but it is blocking work.
                let _ = tokio::task::spawn_blocking(|| reload_and_audit("SIGHUP")).await;
            }
        });
    }
}
