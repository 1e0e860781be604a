//! The TOML file: finding it, and reading it into a [`Config`] with every error it holds.

use std::io;
use std::path::{Path, PathBuf};

use super::Config;
use super::error::{ConfigError, Origin, Setting};
use super::names::{self, is_guard_name, key_path, section_path};
use super::settings::{BreakerSettings, BulkheadSettings, RateSettings, RetrySettings, Section};
use super::value::Raw;

/// The variable naming the configuration file.
pub(super) const CONFIG_VARIABLE: &str = "HARDENED_CONFIG";

/// The file read when `HARDENED_CONFIG` is not set, if it exists.
pub(super) const DEFAULT_FILE: &str = "hardened.toml";

/// The top-level sections.
pub(super) const SECTIONS: &[&str] =
    &[BreakerSettings::KIND, RateSettings::KIND, BulkheadSettings::KIND, RetrySettings::KIND];

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
        match section.as_str() {
            BreakerSettings::KIND => read_kind::<BreakerSettings>(&mut config, origin, value, &mut errors),
            RateSettings::KIND => read_kind::<RateSettings>(&mut config, origin, value, &mut errors),
            BulkheadSettings::KIND => read_kind::<BulkheadSettings>(&mut config, origin, value, &mut errors),
            RetrySettings::KIND => read_kind::<RetrySettings>(&mut config, origin, value, &mut errors),
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
        message: error.to_string().trim_end().to_owned(),
    }
}

fn read_kind<S: Section>(config: &mut Config, origin: &str, value: &toml::Value, errors: &mut Vec<ConfigError>) {
    let invalid = |path: String, value: &toml::Value, problem: &str, allowed: String| ConfigError::Invalid {
        setting: Box::new(Setting { origin: Origin::File(origin.to_owned()), path, value: value.to_string() }),
        problem: problem.to_owned(),
        allowed,
    };
    let Some(sections) = value.as_table() else {
        let allowed = format!("sections such as [{0}.default] and [{0}.<name>]", S::KIND);
        errors.push(invalid(S::KIND.to_owned(), value, "is not a table", allowed));
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
            errors.push(invalid(path, keys, "is not a table", allowed));
            continue;
        };
        let mut settings = S::default();
        for (key, raw) in keys {
            let path = key_path(S::KIND, name, key);
            if !S::KEYS.contains(&key.as_str()) {
                errors.push(ConfigError::UnknownKey {
                    origin: Origin::File(origin.to_owned()),
                    path,
                    suggestion: names::closest(key, S::KEYS),
                    allowed: S::KEYS,
                });
            } else if let Err(problem) = settings.set(key, Raw::Toml(raw)) {
                errors.push(invalid(path, raw, &problem.problem, problem.allowed));
            }
        }
        if let Some((key, problem)) = settings.check(&|key| keys.contains_key(key))
            && let Some(raw) = keys.get(key)
        {
            errors.push(invalid(key_path(S::KIND, name, key), raw, &problem.problem, problem.allowed));
        }
        S::of_mut(config).insert(name.clone(), settings);
    }
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
