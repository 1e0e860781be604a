//! Where each value of the configuration in force came from: the built-in default, a function's
//! attribute, the file or the environment; and the whole as one document for operators (`GET /config`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{LazyLock, PoisonError, RwLock};

use serde::Serialize;

use super::Config;
use super::env::Written;
use super::names::{DEFAULT, key_path};
use super::operations::{HealthSettings, ServerSettings, ShutdownSettings, Single, TelemetrySettings};
use super::settings::{EachKind, Section, each_kind};
use crate::keys::Keys;

/// What a load read, key path by key path.
#[derive(Debug, Clone, Default)]
pub(super) struct Provenance {
    /// The file's path, or what the text was called (`embedded config/hardened.toml`); `None` without one.
    pub(super) origin: Option<String>,
    /// The key paths the file wrote.
    pub(super) file: BTreeSet<String>,
    /// The key paths the environment wrote, with the variable of each.
    pub(super) env: Written,
    /// Whether the configuration was given whole by the program ([`install`](super::install)) rather
    /// than read: then every key written is the program's.
    pub(super) installed: bool,
}

static PROVENANCE: LazyLock<RwLock<Provenance>> = LazyLock::new(|| RwLock::new(Provenance::default()));

/// Makes `provenance` that of the configuration in force.
pub(super) fn set(provenance: Provenance) {
    *PROVENANCE.write().unwrap_or_else(PoisonError::into_inner) = provenance;
}

/// The file (or text) the configuration in force was read from.
pub(super) fn origin() -> Option<String> {
    PROVENANCE.read().unwrap_or_else(PoisonError::into_inner).origin.clone()
}

/// Every key path `config` sets, with its value as TOML (secrets masked, as [`render`](super::render)
/// writes them).
pub(super) fn entries(config: &Config) -> BTreeMap<String, toml::Value> {
    let mut entries = BTreeMap::new();
    each_kind(&mut GuardEntries { config, entries: &mut entries });
    single_entries::<TelemetrySettings>(config, &mut entries);
    single_entries::<HealthSettings>(config, &mut entries);
    single_entries::<ShutdownSettings>(config, &mut entries);
    single_entries::<ServerSettings>(config, &mut entries);
    entries
}

struct GuardEntries<'a> {
    config: &'a Config,
    entries: &'a mut BTreeMap<String, toml::Value>,
}

impl EachKind for GuardEntries<'_> {
    fn kind<S: Section>(&mut self) {
        for (name, settings) in S::of(self.config) {
            for (key, value) in settings.entries() {
                self.entries.insert(key_path(S::KIND, name, key), value);
            }
        }
    }
}

fn single_entries<S: Single>(config: &Config, entries: &mut BTreeMap<String, toml::Value>) {
    for (key, value) in S::of(config).entries() {
        entries.insert(format!("{}.{key}", S::SECTION), value);
    }
}

/// The configuration in force, each value with where it came from: what `GET /config` answers.
///
/// ```json
/// {
///   "file": "config/production/hardened.toml",
///   "settings": {
///     "breaker.llm.failure_rate": { "value": 50, "source": "file", "file": "config/production/hardened.toml" },
///     "breaker.llm.window": { "value": 100, "source": "default" },
///     "rate.llm.per_second": { "value": 20, "source": "literal" },
///     "telemetry.endpoint": { "value": "http://***:***@collector:4317", "source": "env", "variable": "HARDENED_TELEMETRY__ENDPOINT" }
///   }
/// }
/// ```
///
/// Every key of every guard made is listed, with its value after layering; a key of the `[telemetry]`,
/// `[health]`, `[shutdown]` and `[server]` sections only when the configuration writes it (the others
/// keep the built-in default, or what the program sets in code). `source` is `default` (built in),
/// `literal` (the function's attribute), `file`, `env` or `installed` (a `Config` the program
/// [installed](super::install)). Secrets are masked as `***`: the user, password, query values and
/// fragment of URLs, and tokens.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct EffectiveConfig {
    /// The file read, or what the configuration text was called; `null` without one.
    pub file: Option<String>,
    /// Every key path in force, with its value and source.
    pub settings: BTreeMap<String, EffectiveValue>,
}

/// One value in force and its source.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct EffectiveValue {
    /// The value, as the configuration would write it (durations as `"30s"`, rates as `"100/min"`).
    pub value: serde_json::Value,
    /// `default`, `literal`, `file`, `env` or `installed`.
    pub source: &'static str,
    /// With `source = "file"`: the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// With `source = "env"`: the variable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variable: Option<String>,
}

/// The configuration in force, each value with its source.
#[must_use]
pub fn effective_config() -> EffectiveConfig {
    let current = super::current();
    let provenance = PROVENANCE.read().unwrap_or_else(PoisonError::into_inner).clone();
    let literals = Config::default().with_guard_sections(crate::guards::literals());
    let running = Config::clone(&current).with_guard_sections(crate::guards::effective());
    let mut settings = BTreeMap::new();
    each_kind(&mut GuardSources {
        current: &current,
        running: &running,
        literals: &literals,
        provenance: &provenance,
        settings: &mut settings,
    });
    for (path, value) in entries(&current).into_iter().filter(|(path, _)| is_single(path)) {
        let sourced = provenance.source_of(&path, &value);
        settings.insert(path, sourced);
    }
    for (path, sourced) in &mut settings {
        if is_secret(path) {
            sourced.value = serde_json::Value::String(crate::redact::MASK.to_owned());
        }
    }
    EffectiveConfig { file: provenance.origin, settings }
}

/// Whether the key at `path` holds a secret whole (a URL's secrets are masked by the key itself): a
/// token, a password or a secret, whatever the section.
fn is_secret(path: &str) -> bool {
    let key = path.rsplit('.').next().unwrap_or(path);
    ["token", "password", "secret"].iter().any(|secret| key.ends_with(secret))
}

fn is_single(path: &str) -> bool {
    [TelemetrySettings::SECTION, HealthSettings::SECTION, ShutdownSettings::SECTION, ServerSettings::SECTION]
        .iter()
        .any(|section| path.strip_prefix(section).is_some_and(|rest| rest.starts_with('.')))
}

/// Finds the source of every key of every running guard.
struct GuardSources<'a> {
    current: &'a Config,
    running: &'a Config,
    literals: &'a Config,
    provenance: &'a Provenance,
    settings: &'a mut BTreeMap<String, EffectiveValue>,
}

impl EachKind for GuardSources<'_> {
    fn kind<S: Section>(&mut self) {
        let sections = S::of(self.current);
        let written = |name: &str, key: &str| {
            sections
                .get(name)
                .is_some_and(|section| written_keys(section).iter().any(|set| same_key(S::KIND, key, set)))
        };
        for (name, settings) in S::of(self.running) {
            let literal = S::of(self.literals).get(name).map(written_keys).unwrap_or_default();
            for (key, value) in settings.entries() {
                let path = key_path(S::KIND, name, key);
                let sourced = if written(name, key) {
                    self.provenance.source_of(&written_path(S::KIND, name, key, sections), &value)
                } else if literal.iter().any(|set| same_key(S::KIND, key, set)) {
                    EffectiveValue::of(&value, "literal")
                } else if written(DEFAULT, key) {
                    self.provenance.source_of(&written_path(S::KIND, DEFAULT, key, sections), &value)
                } else {
                    EffectiveValue::of(&value, "default")
                };
                self.settings.insert(path, sourced);
            }
        }
    }
}

/// The path a section wrote `key` under: itself, or the spelling of the same setting it used
/// (`per_minute` for a rate shown as `per_second`).
fn written_path<S: Keys>(kind: &str, name: &str, key: &str, sections: &BTreeMap<String, S>) -> String {
    let spelled = sections
        .get(name)
        .and_then(|section| written_keys(section).into_iter().find(|set| same_key(kind, key, set)))
        .unwrap_or(key);
    key_path(kind, name, spelled)
}

fn written_keys<S: Keys>(settings: &S) -> Vec<&'static str> {
    settings.entries().into_iter().map(|(key, _)| key).collect()
}

/// Whether `shown` and `written` are one setting: the same key, or two spellings of a limiter's rate.
fn same_key(kind: &str, shown: &str, written: &str) -> bool {
    const RATE: [&str; 3] = ["per_second", "per_minute", "per_hour"];
    shown == written || (kind == "rate" && RATE.contains(&shown) && RATE.contains(&written))
}

impl Provenance {
    /// The source of the value at `path`, which the file, the environment or the program wrote.
    fn source_of(&self, path: &str, value: &toml::Value) -> EffectiveValue {
        if let Some(variable) = self.env.get(path) {
            return EffectiveValue { variable: Some(variable.clone()), ..EffectiveValue::of(value, "env") };
        }
        if self.installed || !self.file.contains(path) {
            return EffectiveValue::of(value, "installed");
        }
        EffectiveValue { file: self.origin.clone(), ..EffectiveValue::of(value, "file") }
    }
}

impl EffectiveValue {
    fn of(value: &toml::Value, source: &'static str) -> EffectiveValue {
        EffectiveValue { value: json(value), source, file: None, variable: None }
    }
}

/// A TOML value as JSON; a value JSON cannot hold (a date) as its TOML text.
fn json(value: &toml::Value) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_else(|_| serde_json::Value::String(value.to_string()))
}

/// Every key path in force as JSON, for telling what a reload changed.
pub(super) fn values_in_force() -> BTreeMap<String, serde_json::Value> {
    effective_config().settings.into_iter().map(|(path, sourced)| (path, sourced.value)).collect()
}
