//! Guard names in the configuration: how sections are spelled, how the environment spells them, and
//! which sections name a guard that no function declares.

use std::fmt;

use super::Config;
use super::settings::{EachKind, Section, each_kind};
pub use crate::guards::DeclaredNames;

/// The section that applies to every guard of its kind, under the guard's own section.
pub(super) const DEFAULT: &str = "default";

/// A section naming a guard that no function declares: most often a typo.
///
/// Displays as ``[breaker.lm] names no breaker used by any function; did you mean `llm`?``.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnusedName {
    /// A kind of guard: `breaker`, `rate`, ...
    pub kind: &'static str,
    /// The name of the section.
    pub name: String,
    /// The closest declared name of the same kind, when one is close.
    pub suggestion: Option<String>,
}

impl fmt::Display for UnusedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let section = section_path(self.kind, &self.name);
        if self.kind == hardened_schema::metrics::KIND.name {
            // A histogram section names functions, by their kind or their path, rather than a guard.
            write!(f, "[{section}] names no kind of function nor function (`module::function`) with metrics")?;
        } else {
            let noun =
                hardened_schema::KINDS.iter().find(|kind| kind.name == self.kind).map_or(self.kind, |kind| kind.noun);
            write!(f, "[{section}] names no {noun} used by any function")?;
        }
        if let Some(suggestion) = &self.suggestion {
            write!(f, "; did you mean `{suggestion}`?")?;
        }
        Ok(())
    }
}

/// The sections of `config`, other than `default`, that name a guard `declared` does not hold, with the
/// closest declared name of the same kind.
#[must_use]
pub fn unused_names(config: &Config, declared: &DeclaredNames) -> Vec<UnusedName> {
    let mut unused = UnusedNames { config, declared, unused: Vec::new() };
    each_kind(&mut unused);
    unused.unused
}

/// Finds the unused sections of every guard kind, kind by kind.
struct UnusedNames<'a> {
    config: &'a Config,
    declared: &'a DeclaredNames,
    unused: Vec<UnusedName>,
}

impl EachKind for UnusedNames<'_> {
    fn kind<S: Section>(&mut self) {
        unused_of::<S>(self.config, self.declared, &mut self.unused);
    }
}

fn unused_of<S: Section>(config: &Config, declared: &DeclaredNames, unused: &mut Vec<UnusedName>) {
    let names = S::declared(declared);
    let candidates: Vec<&str> = names.iter().map(String::as_str).collect();
    for name in S::of(config).keys() {
        if name == DEFAULT || names.contains(name) {
            continue;
        }
        unused.push(UnusedName {
            kind: S::KIND,
            name: name.clone(),
            suggestion: closest(name, &candidates).map(ToOwned::to_owned),
        });
    }
}

/// The closest of `candidates` to `unknown`, if any is close enough to be a plausible typo: similar by
/// Jaro-Winkler, or one edit away per four characters (so that short names such as `lm` still find `llm`).
pub(super) fn closest<'a>(unknown: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let unknown = unknown.to_ascii_lowercase();
    candidates
        .iter()
        .filter_map(|candidate| {
            let lower = candidate.to_ascii_lowercase();
            // A name that long is no misspelling of this one; comparing would cost time and memory in
            // proportion to its length (the edit distance keeps a table of both lengths).
            if unknown.len() > 2 * lower.len() + 8 {
                return None;
            }
            let similarity = strsim::jaro_winkler(&unknown, &lower);
            let edits = strsim::damerau_levenshtein(&unknown, &lower);
            let allowed_edits = (unknown.len().max(lower.len()) / 4).max(1);
            (similarity > 0.8 || edits <= allowed_edits).then_some((similarity, *candidate))
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

/// Whether a guard may be called `name`: ASCII letters, digits, `_`, `.`, `:` and `-`, like the macro's
/// `name = ".."`.
pub(super) fn is_guard_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"_.:-".contains(&byte))
}

/// `name` as a TOML key: bare when it can be, quoted otherwise (`llm`, `"api.v1"`).
pub(super) fn toml_key(name: &str) -> String {
    if !name.is_empty() && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-') {
        name.to_owned()
    } else {
        toml::Value::String(name.to_owned()).to_string()
    }
}

/// `breaker.llm`, or `breaker."api.v1"`.
pub(super) fn section_path(kind: &str, name: &str) -> String {
    format!("{kind}.{}", toml_key(name))
}

/// `breaker.llm.failure_rate`.
pub(super) fn key_path(kind: &str, name: &str, key: &str) -> String {
    format!("{}.{key}", section_path(kind, name))
}

/// How the environment spells a guard name: upper-cased, with `-`, `.` and `:` written as `_`.
///
/// Environment variable names hold only letters, digits and `_`, so `search-api`, `search.api` and
/// `search_api` are all `SEARCH_API` there, and `my_app::fetch` is `MY_APP__FETCH`.
///
/// ```
/// assert_eq!(hardened::config::env_name("search-api"), "SEARCH_API");
/// assert_eq!(hardened::config::env_name("my_app::fetch"), "MY_APP__FETCH");
/// ```
#[must_use]
pub fn env_name(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '-' | '.' | ':' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

/// The variable that overrides `key` of the section `kind.name`.
///
/// ```
/// assert_eq!(
///     hardened::config::env_var("rate", "search-api", "per_second"),
///     "HARDENED_RATE__SEARCH_API__PER_SECOND",
/// );
/// ```
#[must_use]
pub fn env_var(kind: &str, name: &str, key: &str) -> String {
    format!("HARDENED_{}__{}__{}", kind.to_ascii_uppercase(), env_name(name), key.to_ascii_uppercase())
}
