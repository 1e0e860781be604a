//! Overrides from the environment: `HARDENED_<SECTION>__<NAME>__<KEY>=value`, applied over the file key
//! by key.
//!
//! The section and the key are matched case-insensitively. The name part is matched against the names the
//! environment could mean (the file's sections of that kind, the declared guard names, and `default`) by
//! their [`env_name`]: upper-cased, with `-`, `.` and `:` read as `_`. One match is the section overridden;
//! none makes a section named by the name part in lower case; more than one is an error, since the
//! environment cannot tell `search-api` from `search_api`.

use std::collections::{BTreeMap, BTreeSet};

use super::Config;
use super::error::{ConfigError, Origin, Setting};
use super::file::{SECTIONS, SINGLE_SECTIONS};
use super::names::{self, DEFAULT, DeclaredNames, env_name, is_guard_name, key_path, section_path};
use super::operations::{HealthSettings, ServerSettings, ShutdownSettings, Single, TelemetrySettings};
use super::settings::{EachKind, Section, each_kind};
use crate::keys::{Keys, Problem, Raw};

const PREFIX: &str = "HARDENED_";

/// Applies the `HARDENED_*` overrides among `vars` on top of `config`; the environment wins, key by key.
///
/// A variable's name part is resolved against the sections of `config` (and `default`); see the module
/// documentation of [`crate::config`] for the mapping. Variables that do not start with `HARDENED_`, and
/// `HARDENED_*` variables without a `__` (such as `HARDENED_CONFIG`), are not overrides and are ignored.
pub fn with_env(config: Config, vars: impl IntoIterator<Item = (String, String)>) -> Result<Config, ConfigError> {
    with_env_for(config, vars, &DeclaredNames::default())
}

/// [`with_env`], resolving name parts against the guard names functions declare as well, so that
/// `HARDENED_RATE__SEARCH_API__BURST` reaches a limiter declared as `search-api` that the file does not
/// mention.
pub fn with_env_for(
    config: Config,
    vars: impl IntoIterator<Item = (String, String)>,
    declared: &DeclaredNames,
) -> Result<Config, ConfigError> {
    let (config, errors, _) = apply(config, vars, declared);
    ConfigError::gather(errors)?;
    Ok(config)
}

/// One override, split into its parts.
struct Override {
    variable: String,
    value: String,
    name: String,
    key: String,
}

/// The key paths overrides wrote (`breaker.llm.failure_rate`), each with the variable that wrote it.
pub(super) type Written = BTreeMap<String, String>;

/// Applies what can be applied and returns the errors of the rest, and the keys written.
pub(super) fn apply(
    mut config: Config,
    vars: impl IntoIterator<Item = (String, String)>,
    declared: &DeclaredNames,
) -> (Config, Vec<ConfigError>, Written) {
    let mut errors = Vec::new();
    let mut written = Written::new();
    let mut by_kind: BTreeMap<&'static str, Vec<Override>> = BTreeMap::new();
    let mut by_single: BTreeMap<&'static str, Vec<Override>> = BTreeMap::new();
    let mut vars: Vec<(String, String)> = vars.into_iter().collect();
    vars.sort();
    for (variable, value) in vars {
        let Some(rest) = variable.strip_prefix(PREFIX) else { continue };
        let Some((section, rest)) = rest.split_once("__") else { continue };
        let section_lower = section.to_ascii_lowercase();
        let Some(kind) = SECTIONS.iter().copied().find(|kind| *kind == section_lower) else {
            errors.push(ConfigError::UnknownSection {
                origin: Origin::Env(variable.clone()),
                section: section_lower.clone(),
                suggestion: names::closest(&section_lower, SECTIONS),
                allowed: SECTIONS,
            });
            continue;
        };
        if SINGLE_SECTIONS.contains(&kind) {
            if rest.is_empty() || rest.contains("__") {
                errors.push(ConfigError::Malformed { variable });
            } else {
                let key = rest.to_ascii_lowercase();
                by_single.entry(kind).or_default().push(Override { variable, value, name: String::new(), key });
            }
            continue;
        }
        match rest.rsplit_once("__") {
            Some((name, key)) if !name.is_empty() && !key.is_empty() => {
                let (name, key) = (name.to_owned(), key.to_ascii_lowercase());
                by_kind.entry(kind).or_default().push(Override { variable, value, name, key });
            }
            _ => errors.push(ConfigError::Malformed { variable }),
        }
    }
    each_kind(&mut ApplyOverrides {
        by_kind,
        config: &mut config,
        declared,
        errors: &mut errors,
        written: &mut written,
    });
    for (section, overrides) in by_single {
        let (config, errors, written) = (&mut config, &mut errors, &mut written);
        match section {
            TelemetrySettings::SECTION => apply_single::<TelemetrySettings>(config, overrides, errors, written),
            HealthSettings::SECTION => apply_single::<HealthSettings>(config, overrides, errors, written),
            ShutdownSettings::SECTION => apply_single::<ShutdownSettings>(config, overrides, errors, written),
            _ => apply_single::<ServerSettings>(config, overrides, errors, written),
        }
    }
    (config, errors, written)
}

/// Applies the overrides of every guard kind, kind by kind.
struct ApplyOverrides<'a> {
    by_kind: BTreeMap<&'static str, Vec<Override>>,
    config: &'a mut Config,
    declared: &'a DeclaredNames,
    errors: &'a mut Vec<ConfigError>,
    written: &'a mut Written,
}

impl EachKind for ApplyOverrides<'_> {
    fn kind<S: Section>(&mut self) {
        if let Some(overrides) = self.by_kind.remove(S::KIND) {
            apply_kind::<S>(self.config, overrides, self.declared, self.errors, self.written);
        }
    }
}

fn apply_kind<S: Section>(
    config: &mut Config,
    overrides: Vec<Override>,
    declared: &DeclaredNames,
    errors: &mut Vec<ConfigError>,
    written: &mut Written,
) {
    // The names the environment could mean, taken before any override adds a section.
    let known: BTreeSet<String> =
        S::of(config).keys().chain(S::declared(declared)).cloned().chain(std::iter::once(DEFAULT.to_owned())).collect();
    let mut by_name: BTreeMap<String, Vec<Override>> = BTreeMap::new();
    for found in overrides {
        let name = match resolve(&found.name, &known) {
            Ok(name) => name,
            Err(candidates) => {
                errors.push(ConfigError::Ambiguous {
                    variable: found.variable,
                    name: found.name,
                    candidates: candidates.iter().map(|name| format!("[{}]", section_path(S::KIND, name))).collect(),
                });
                continue;
            }
        };
        if !is_guard_name(&name) {
            errors.push(ConfigError::InvalidName {
                origin: Origin::Env(found.variable),
                path: section_path(S::KIND, &name),
            });
            continue;
        }
        by_name.entry(name).or_default().push(found);
    }
    for (name, overrides) in by_name {
        let settings = S::of(config).get(&name).cloned().unwrap_or_default();
        let path_of = |key: &str| key_path(S::KIND, &name, key);
        if let Some(settings) = apply_keys(settings, overrides, &path_of, errors, written) {
            S::of_mut(config).insert(name, settings);
        }
    }
}

fn apply_single<S: Single>(
    config: &mut Config,
    overrides: Vec<Override>,
    errors: &mut Vec<ConfigError>,
    written: &mut Written,
) {
    let settings = S::of(config).clone();
    let path_of = |key: &str| format!("{}.{key}", S::SECTION);
    if let Some(settings) = apply_keys(settings, overrides, &path_of, errors, written) {
        *S::of_mut(config) = settings;
    }
}

/// Applies the overrides of one section's keys to `settings`; returns them when any key was written.
fn apply_keys<K: Keys>(
    mut settings: K,
    overrides: Vec<Override>,
    path_of: &dyn Fn(&str) -> String,
    errors: &mut Vec<ConfigError>,
    paths_written: &mut Written,
) -> Option<K> {
    // Every override of one key, so that two spellings of it are caught.
    let mut by_key: BTreeMap<&'static str, Vec<Override>> = BTreeMap::new();
    for found in overrides {
        let Some(key) = K::keys().iter().copied().find(|key| *key == found.key) else {
            errors.push(ConfigError::UnknownKey {
                origin: Origin::Env(found.variable),
                path: path_of(&found.key),
                suggestion: names::closest(&found.key, K::keys()),
                allowed: K::keys(),
            });
            continue;
        };
        by_key.entry(key).or_default().push(found);
    }
    let mut written: BTreeMap<&'static str, Override> = BTreeMap::new();
    for (key, mut found) in by_key {
        if found.len() > 1 {
            errors.push(ConfigError::Repeated {
                variables: found.into_iter().map(|found| found.variable).collect(),
                path: path_of(key),
            });
            continue;
        }
        let Some(found) = found.pop() else { continue };
        match settings.set(key, Raw::Env(&found.value)) {
            Ok(()) => {
                written.insert(key, found);
            }
            Err(problem) => errors.push(invalid(path_of(key), found.variable, &found.value, problem)),
        }
    }
    if written.is_empty() {
        return None;
    }
    if let Some((key, problem)) = settings.check(&|key| written.contains_key(key))
        && let Some(found) = written.get(key)
    {
        errors.push(invalid(path_of(key), found.variable.clone(), &found.value, problem));
    }
    paths_written.extend(written.into_iter().map(|(key, found)| (path_of(key), found.variable)));
    Some(settings)
}

fn invalid(path: String, variable: String, value: &str, problem: Problem) -> ConfigError {
    ConfigError::Invalid {
        setting: Box::new(Setting::new(Origin::Env(variable), path, value)),
        problem: problem.problem,
        allowed: problem.allowed,
    }
}

/// The section a name part means: the one known name it spells, or itself in lower case when it spells
/// none; the candidates when it spells several.
fn resolve(part: &str, known: &BTreeSet<String>) -> Result<String, Vec<String>> {
    let wanted = env_name(part);
    let matches: Vec<&String> = known.iter().filter(|name| env_name(name) == wanted).collect();
    match matches.as_slice() {
        [] => Ok(part.to_ascii_lowercase()),
        [only] => Ok((*only).clone()),
        several => Err(several.iter().map(|name| (*name).clone()).collect()),
    }
}
