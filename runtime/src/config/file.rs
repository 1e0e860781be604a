//! The TOML file: finding it, and reading it into a [`Config`] with every error it holds.

use std::io;
use std::path::{Path, PathBuf};

use super::Config;
use super::error::{ConfigError, Origin, Setting};
use super::names::{self, is_guard_name, key_path, section_path};
use super::operations::{HealthSettings, ServerSettings, ShutdownSettings, Single, TelemetrySettings};
pub(super) use super::settings::SECTIONS;
use super::settings::{EachKind, Section, each_kind};
use crate::keys::{Keys, Raw};

/// The variable naming the configuration file.
pub(super) const CONFIG_VARIABLE: &str = "HARDENED_CONFIG";

/// The file read when `HARDENED_CONFIG` is not set, if it exists.
pub(super) const DEFAULT_FILE: &str = "hardened.toml";

/// The top-level sections of the service as a whole.
pub(super) const SINGLE_SECTIONS: &[&str] =
    &[TelemetrySettings::SECTION, HealthSettings::SECTION, ShutdownSettings::SECTION, ServerSettings::SECTION];

/// Reads TOML text into a [`Config`]; `origin` names the file in errors.
///
/// Every unknown key and invalid value is reported (sections and keys in sorted order), gathered into
/// [`ConfigError::Several`] when there is more than one. The result's `source` is `None`: [`super::read`]
/// and [`super::load`] set it to the file they read.
pub fn parse(source: &str, origin: &str) -> Result<Config, ConfigError> {
    let (config, errors) = parse_gathering(source, origin)?;
    ConfigError::gather(errors)?;
    Ok(config)
}

/// Reads TOML text, keeping every valid section and returning the errors of the others; only a syntax
/// error stops it.
pub(super) fn parse_gathering(source: &str, origin: &str) -> Result<(Config, Vec<ConfigError>), ConfigError> {
    let table: toml::Table = source.parse().map_err(|error: toml::de::Error| syntax(source, origin, &error))?;
    let mut config = Config::default();
    let mut errors = Vec::new();
    for (section, value) in &table {
        let mut guard_section =
            ReadGuardSection { section, config: &mut config, origin, value, errors: &mut errors, read: false };
        each_kind(&mut guard_section);
        if guard_section.read {
            continue;
        }
        match section.as_str() {
            TelemetrySettings::SECTION => read_single::<TelemetrySettings>(&mut config, origin, value, &mut errors),
            HealthSettings::SECTION => read_single::<HealthSettings>(&mut config, origin, value, &mut errors),
            ShutdownSettings::SECTION => read_single::<ShutdownSettings>(&mut config, origin, value, &mut errors),
            ServerSettings::SECTION => read_single::<ServerSettings>(&mut config, origin, value, &mut errors),
            _ => errors.push(ConfigError::UnknownSection {
                origin: Origin::File(origin.to_owned()),
                section: names::toml_key(section),
                suggestion: names::closest(section, SECTIONS),
                allowed: SECTIONS,
            }),
        }
    }
    Ok((config, errors))
}

fn syntax(source: &str, origin: &str, error: &toml::de::Error) -> ConfigError {
    let position = error.span().map(|span| {
        let before = source.get(..span.start).unwrap_or(source);
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or_default().chars().count() + 1;
        (line, column)
    });
    ConfigError::Syntax {
        origin: origin.to_owned(),
        line: position.map(|(line, _)| line),
        column: position.map(|(_, column)| column),
        message: crate::redact::urls(error.to_string().trim_end()).into_owned(),
    }
}

fn invalid(origin: &str, path: String, value: &toml::Value, problem: &str, allowed: String) -> ConfigError {
    ConfigError::Invalid {
        setting: Box::new(Setting::new(Origin::File(origin.to_owned()), path, &value.to_string())),
        problem: problem.to_owned(),
        allowed,
    }
}

/// Reads `value` as the sections of the guard kind called `section`, if it is one.
struct ReadGuardSection<'a> {
    section: &'a str,
    config: &'a mut Config,
    origin: &'a str,
    value: &'a toml::Value,
    errors: &'a mut Vec<ConfigError>,
    /// Whether `section` was a guard kind's, and read.
    read: bool,
}

impl EachKind for ReadGuardSection<'_> {
    fn kind<S: Section>(&mut self) {
        if S::KIND == self.section {
            read_kind::<S>(self.config, self.origin, self.value, self.errors);
            self.read = true;
        }
    }
}

fn read_kind<S: Section>(config: &mut Config, origin: &str, value: &toml::Value, errors: &mut Vec<ConfigError>) {
    let Some(sections) = value.as_table() else {
        let allowed = format!("sections such as [{0}.default] and [{0}.<name>]", S::KIND);
        errors.push(invalid(origin, S::KIND.to_owned(), value, "is not a table", allowed));
        return;
    };
    for (name, keys) in sections {
        if !is_guard_name(name) {
            errors.push(ConfigError::InvalidName {
                origin: Origin::File(origin.to_owned()),
                path: section_path(S::KIND, name),
            });
            continue;
        }
        let Some(keys) = keys.as_table() else {
            let path = section_path(S::KIND, name);
            let allowed = format!("a [{path}] section of {} settings", S::NOUN);
            errors.push(invalid(origin, path, keys, "is not a table", allowed));
            continue;
        };
        let settings = read_keys::<S>(keys, origin, &|key| key_path(S::KIND, name, key), errors);
        S::of_mut(config).insert(name.clone(), settings);
    }
}

fn read_single<S: Single>(config: &mut Config, origin: &str, value: &toml::Value, errors: &mut Vec<ConfigError>) {
    let Some(keys) = value.as_table() else {
        let allowed = format!("a [{}] section", S::SECTION);
        errors.push(invalid(origin, S::SECTION.to_owned(), value, "is not a table", allowed));
        return;
    };
    *S::of_mut(config) = read_keys::<S>(keys, origin, &|key| format!("{}.{key}", S::SECTION), errors);
}

/// The settings one table of the file holds, with an error for each key that is unknown or invalid.
fn read_keys<K: Keys>(
    keys: &toml::Table,
    origin: &str,
    path_of: &dyn Fn(&str) -> String,
    errors: &mut Vec<ConfigError>,
) -> K {
    let mut settings = K::default();
    for (key, raw) in keys {
        if !K::keys().contains(&key.as_str()) {
            errors.push(ConfigError::UnknownKey {
                origin: Origin::File(origin.to_owned()),
                path: path_of(key),
                suggestion: names::closest(key, K::keys()),
                allowed: K::keys(),
            });
        } else if let Err(problem) = settings.set(key, Raw::Toml(raw)) {
            errors.push(invalid(origin, path_of(key), raw, &problem.problem, problem.allowed));
        }
    }
    if let Some((key, problem)) = settings.check(&|key| keys.contains_key(key))
        && let Some(raw) = keys.get(key)
    {
        errors.push(invalid(origin, path_of(key), raw, &problem.problem, problem.allowed));
    }
    settings
}

/// The file to read: the one `HARDENED_CONFIG` names (which must exist), else `hardened.toml` in `dir`
/// if there is one, else none. Returns its path and text.
pub(super) fn locate(dir: &Path, named: Option<&str>) -> Result<Option<(PathBuf, String)>, ConfigError> {
    if let Some(named) = named {
        let path = dir.join(named);
        return match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some((path, text))),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Err(ConfigError::Missing { path }),
            Err(source) => Err(ConfigError::Read { path, source }),
        };
    }
    let path = dir.join(DEFAULT_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some((path, text))),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ConfigError::Read { path, source }),
    }
}
