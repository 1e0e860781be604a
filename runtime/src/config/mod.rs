//! Configuration of the named guards from a TOML file and the environment.
//!
//! Precedence, from strongest: environment > configuration file > macro literal > built-in default.
//! This module reads the first two into a [`Config`]; the guards layer it over the rest.
//!
//! ```
//! use std::time::Duration;
//!
//! let file = r#"
//!     [breaker.llm]
//!     failure_rate = 50
//!     open_for = "1m"
//!
//!     [rate.search_api]
//!     per_second = "100/min"
//! "#;
//! let config = hardened::config::parse(file, "hardened.toml")?;
//! let vars = [("HARDENED_BREAKER__LLM__FAILURE_RATE".to_owned(), "60".to_owned())];
//! let config = hardened::config::with_env(config, vars)?;
//!
//! let llm = &config.breaker["llm"];
//! assert_eq!(llm.failure_rate, Some(60));
//! assert_eq!(llm.open_for, Some(Duration::from_mins(1)));
//! assert_eq!(config.rate["search_api"].per_second, Some((100, Duration::from_mins(1))));
//! # Ok::<(), hardened::config::ConfigError>(())
//! ```
//!
//! # The file
//!
//! The file named by `HARDENED_CONFIG`, which must then exist; else `hardened.toml` in the current
//! directory, if there is one; else none, which is no error. It holds `[breaker.<name>]`,
//! `[rate.<name>]`, `[concurrency.<name>]`, `[bulkhead.<name>]`, `[retry.<name>]` and `[hedge.<name>]` sections; a section
//! named `default` applies to every guard of its kind. `[slo.<name>]` sections give the numbers of service
//! level objectives (see [`crate::slo`]), and `[metrics.<name>]` sections the duration histograms of the
//! functions of a kind or of one function (`[metrics.llm]`, `[metrics."app::chat::complete"]`). Names are matched exactly as written; quote those
//! with `.` or `:` (`[breaker."app::fetch"]`).
//!
//! # The environment
//!
//! `HARDENED_<SECTION>__<NAME>__<KEY>=value` overrides one key, such as
//! `HARDENED_BREAKER__LLM__FAILURE_RATE=60` or `HARDENED_RATE__SEARCH_API__PER_SECOND=100/min`.
//! Section and key are matched case-insensitively. Since variable names cannot hold `-`, `.` or `:`, a
//! name part matches the section whose [`env_name`] it equals: the name upper-cased with those three
//! written as `_` (`search-api` is `SEARCH_API`, `app::fetch` is `APP__FETCH`). The sections it can match
//! are the file's, the declared guard names given to [`with_env_for`] or [`read`], and `default`; when
//! none matches, the override makes a section named by the name part in lower case, and when two do (a
//! file with both `[rate.search-api]` and `[rate.search_api]`), it is an error.
//!
//! # Errors
//!
//! Unknown sections and keys, and values of the wrong type or out of range, are errors that name the file
//! or the variable, the key path, the value and what is allowed:
//!
//! ```text
//! hardened.toml: breaker.llm.failure_rate = 101 is out of range; allowed: a whole number from 1 to 100
//! hardened.toml: unknown key breaker.llm.failur_rate; did you mean failure_rate? allowed keys: ...
//! HARDENED_BREAKER__LLM__WINDOW_KIND=sliding (breaker.llm.window_kind) is not a window kind; allowed: ...
//! ```
//!
//! One load reports every such error it finds, in [`ConfigError::Several`].

mod env;
mod error;
mod file;
mod names;
mod operations;
mod provenance;
mod reload;
mod render;
mod settings;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, PoisonError, RwLock};

use self::provenance::Provenance;

pub use self::env::{with_env, with_env_for};
pub use self::error::{ConfigError, Origin, Setting};
pub use self::file::parse;
pub use self::names::{DeclaredNames, UnusedName, env_name, env_var, unused_names};
pub use self::operations::{
    HealthSettings, LOG_FORMATS, METRICS_EXPORTERS, METRICS_TEMPORALITIES, OTLP_PROTOCOLS, ServerSettings,
    ShutdownSettings, TelemetrySettings,
};
pub use self::provenance::{EffectiveConfig, EffectiveValue, effective_config};
pub use self::reload::{Change, Reloaded, reload_and_audit, reload_on_hangup, reload_with_changes};
pub use self::render::render;
pub use crate::breaker::BreakerSettings;
pub use crate::bulkhead::BulkheadSettings;
pub use crate::concurrency::ConcurrencySettings;
pub use crate::hedge::HedgeSettings;
pub use crate::rate_limit::RateSettings;
pub use crate::retry::RetrySettings;
pub use hardened_core::metrics::MetricsSettings;
pub use hardened_core::slo::SloSettings;

macro_rules! config {
    ($($field:ident: $guard:ty, $settings:ty, $on_site:ident, $one:ident, $all:ident;)*) => {
        /// The configuration of the named guards and of the service, from the file and the environment.
        ///
        /// A guard section named `default` applies to every guard of its kind.
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct Config {
            $(
                #[doc = concat!("`[", stringify!($field), ".<name>]` sections.")]
                pub $field: BTreeMap<String, $settings>,
            )*
            /// `[slo.<name>]` sections: the numbers of service level objectives.
            pub slo: BTreeMap<String, SloSettings>,
            /// `[metrics.<name>]` sections: the duration histograms of the functions of a kind, or of one
            /// function (`module::function`); `default` applies to every function, under its attribute.
            pub metrics: BTreeMap<String, MetricsSettings>,
            /// The `[telemetry]` section.
            pub telemetry: TelemetrySettings,
            /// The `[health]` section.
            pub health: HealthSettings,
            /// The `[shutdown]` section.
            pub shutdown: ShutdownSettings,
            /// The `[server]` section.
            pub server: ServerSettings,
            /// The file read, if any.
            pub source: Option<PathBuf>,
        }
    };
}

crate::guards::guard_kinds!(config);

/// Reads the configuration without installing it: the file `HARDENED_CONFIG` names in `vars` (relative to
/// `dir`), else `hardened.toml` in `dir` if it exists, else none; then the `HARDENED_*` overrides among
/// `vars`, resolving name parts against the file's sections and `declared`.
///
/// Errors of the file and of the environment are reported together; a file that cannot be read or is not
/// valid TOML stops at once.
pub fn read(
    dir: &Path,
    vars: impl IntoIterator<Item = (String, String)>,
    declared: &DeclaredNames,
) -> Result<Config, ConfigError> {
    read_tracked(dir, vars, declared).map(|(config, _)| config)
}

/// [`read`], with where each key came from.
fn read_tracked(
    dir: &Path,
    vars: impl IntoIterator<Item = (String, String)>,
    declared: &DeclaredNames,
) -> Result<(Config, Provenance), ConfigError> {
    let vars: Vec<(String, String)> = vars.into_iter().collect();
    let named = vars
        .iter()
        .rev()
        .find(|(variable, value)| variable == file::CONFIG_VARIABLE && !value.is_empty())
        .map(|(_, value)| value.as_str());
    if let Some((path, text)) = file::locate(dir, named)? {
        let (mut config, provenance) = read_text(&text, &path.display().to_string(), vars, declared)?;
        config.source = Some(path);
        Ok((config, provenance))
    } else {
        let (config, errors, env) = env::apply(Config::default(), vars, declared);
        ConfigError::gather(errors)?;
        Ok((config, Provenance { env, ..Provenance::default() }))
    }
}

/// The file's text, then the overrides among `vars`, with the errors of both reported together.
fn read_text(
    text: &str,
    origin: &str,
    vars: impl IntoIterator<Item = (String, String)>,
    declared: &DeclaredNames,
) -> Result<(Config, Provenance), ConfigError> {
    let (config, mut errors) = file::parse_gathering(text, origin)?;
    let file = provenance::entries(&config).into_keys().collect();
    let (config, env_errors, env) = env::apply(config, vars, declared);
    errors.extend(env_errors);
    ConfigError::gather(errors)?;
    Ok((config, Provenance { origin: Some(origin.to_owned()), file, env, installed: false }))
}

/// Reads the file (`HARDENED_CONFIG`, else `./hardened.toml`, else none) and the process environment,
/// installs the result as [`current()`] and applies it to every guard already running; guards made later
/// read it when they are made. Sections naming no declared guard are reported as warnings.
///
/// Name parts of overrides are resolved against the file's sections and the guard names functions
/// declare; see [`read`].
pub fn load() -> Result<Arc<Config>, ConfigError> {
    reload::load_from(reload::Source::Discovered)
}

/// [`load`], with the file at `path` instead of the one `HARDENED_CONFIG` names or `hardened.toml`: for a
/// service that finds its configuration itself (in a directory given on its command line, say).
/// [`reload`] and `SIGHUP` ([`reload_on_hangup`]) read this file again.
pub fn load_file(path: impl Into<PathBuf>) -> Result<Arc<Config>, ConfigError> {
    reload::load_from(reload::Source::File(path.into()))
}

/// [`load`], with `text` as the file instead of the one `HARDENED_CONFIG` names or `hardened.toml`:
/// for configuration embedded in the binary, or read from somewhere else. `origin` names it in errors.
/// The `HARDENED_*` overrides of the process environment still apply; [`reload`] reads them again over
/// the same text.
pub fn load_text(text: &str, origin: &str) -> Result<Arc<Config>, ConfigError> {
    reload::load_from(reload::Source::Text { text: Arc::from(text), origin: origin.to_owned() })
}

/// Reads the configuration from `source`, without installing it.
fn read_from(source: &reload::Source, declared: &DeclaredNames) -> Result<(Config, Provenance), ConfigError> {
    let (config, provenance) = match source {
        reload::Source::Discovered => read_tracked(Path::new(""), process_overrides(), declared),
        reload::Source::File(path) => {
            let text = std::fs::read_to_string(path).map_err(|error| match error.kind() {
                std::io::ErrorKind::NotFound => ConfigError::Missing { path: path.clone() },
                _ => ConfigError::Read { path: path.clone(), source: error },
            })?;
            let (mut config, provenance) =
                read_text(&text, &path.display().to_string(), process_overrides(), declared)?;
            config.source = Some(path.clone());
            Ok((config, provenance))
        }
        reload::Source::Text { text, origin } => read_text(text, origin, process_overrides(), declared),
    }?;
    // Objectives are checked against the functions that count towards them: a bad one refuses the whole
    // configuration, at load and at reload alike.
    hardened_core::slo::resolve(hardened_core::slo::members(), &config.slo, &config.metrics)?;
    Ok((config, provenance))
}

/// The names functions declare: their guards', the objectives they count towards, and the kinds and
/// functions (`module::function`) a histogram section may name.
pub(super) fn declared_names() -> DeclaredNames {
    let mut declared = crate::guards::declared_names();
    declared.slo = hardened_core::slo::members().iter().map(|member| member.name.to_owned()).collect();
    declared.slo.sort();
    declared.slo.dedup();
    let metered = crate::sites().iter().filter(|site| site.metrics_enabled());
    declared.metrics =
        metered.flat_map(|site| [site.kind().to_owned(), crate::guards::histograms::function_path(site)]).collect();
    declared.metrics.sort();
    declared.metrics.dedup();
    declared
}

fn process_overrides() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os().filter_map(|(variable, value)| {
        let variable = variable.into_string().ok()?;
        variable.starts_with("HARDENED_").then(|| (variable, value.to_string_lossy().into_owned()))
    })
}

fn finish_load(config: Config, provenance: Provenance, declared: &DeclaredNames) -> Arc<Config> {
    let config = install_config(config);
    provenance::set(provenance);
    for unused in unused_names(&config, declared) {
        tracing::warn!(target: "hardened::config", "{unused}");
    }
    config
}

/// Reads the configuration again from where it was loaded ([`load`]'s file, [`load_file`]'s, or
/// [`load_text`]'s text, with the environment of now over it) and retunes every running guard, keeping
/// breaker states, bucket levels, retry budgets and the permits of calls in flight. On an error nothing
/// changes. Before any load, it is [`load`].
///
/// The size and kind of a breaker's window shape its storage: a change to them is reported and takes
/// effect at the next start. [`reload_with_changes`] also tells what changed; [`reload_and_audit`]
/// logs and audits it too.
pub fn reload() -> Result<Arc<Config>, ConfigError> {
    reload::load_from(reload::source())
}

/// The settings every guard runs with, as TOML: built-in defaults, the functions' literals and the
/// configuration, layered. For operators: `agent-server config check` prints it.
#[must_use]
pub fn effective() -> String {
    render(&Config::clone(&current()).with_guard_sections(crate::guards::effective()))
}

/// Sections of the configuration in force that name no guard any function declares, each with the
/// closest declared name when there is one.
#[must_use]
pub fn unused() -> Vec<UnusedName> {
    unused_names(&current(), &declared_names())
}

static CURRENT: LazyLock<RwLock<Arc<Config>>> = LazyLock::new(|| RwLock::new(Arc::new(Config::default())));

/// Makes `config` the current configuration and applies it to every guard already running, for programs
/// that build their own configuration and for tests. Its values are shown as the program's
/// (`installed`) by [`effective_config`].
#[allow(clippy::must_use_candidate, reason = "installing is the point; the `Config` returned is for convenience")]
pub fn install(config: Config) -> Arc<Config> {
    let config = install_config(config);
    provenance::set(Provenance { installed: true, ..Provenance::default() });
    config
}

fn install_config(config: Config) -> Arc<Config> {
    let config = Arc::new(config);
    *CURRENT.write().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&config);
    let mut shutdown = crate::shutdown::ShutdownConfig::default();
    config.shutdown.apply_to(&mut shutdown);
    crate::shutdown::ShutdownConfig::install(shutdown);
    #[cfg(feature = "http")]
    {
        let mut limits = crate::http::ServerLimits::default();
        config.server.apply_to(&mut limits);
        crate::http::ServerLimits::install(limits);
    }
    crate::guards::configure(config.guard_sections());
    // Logs the functions whose histogram a change waits for the next start; `reload_with_changes` lists them.
    let _ = crate::metrics::configure_histograms(config.metrics.clone());
    config
}

/// The installed configuration: an empty [`Config`] before any [`load`] or [`install`].
#[must_use]
pub fn current() -> Arc<Config> {
    Arc::clone(&CURRENT.read().unwrap_or_else(PoisonError::into_inner))
}
