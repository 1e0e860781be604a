//! What can be wrong with a configuration, said the way an operator needs it: where, which key, which
//! value, and what would be allowed.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Where a setting was written: a file, or an environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A configuration file, as named in messages (`hardened.toml`).
    File(String),
    /// An environment variable, by its name (`HARDENED_BREAKER__LLM__FAILURE_RATE`).
    Env(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(file) => f.write_str(file),
            Origin::Env(variable) => f.write_str(variable),
        }
    }
}

/// One setting as written: where, its key path and its value.
///
/// Displays as `hardened.toml: breaker.llm.failure_rate = 101` for a file (the value in TOML syntax) and
/// as `HARDENED_BREAKER__LLM__FAILURE_RATE=101 (breaker.llm.failure_rate)` for an environment variable
/// (the value as written, and the key path it was mapped to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// Where it was written.
    pub origin: Origin,
    /// The key path, such as `breaker.llm.failure_rate`.
    pub path: String,
    /// The value as written, the secrets of its URLs masked.
    pub value: String,
}

impl Setting {
    /// The setting written at `origin` under `path`, with `value` as written but for the secrets of the
    /// URLs in it, [masked](crate::redact::urls): an error must not echo a password.
    #[must_use]
    pub fn new(origin: Origin, path: String, value: &str) -> Setting {
        Setting { origin, path, value: crate::redact::urls(value).into_owned() }
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Origin::File(file) => write!(f, "{file}: {} = {}", self.path, self.value),
            Origin::Env(variable) => write!(f, "{variable}={} ({})", self.value, self.path),
        }
    }
}

/// A configuration that cannot be used. Loading gathers every error it finds into [`ConfigError::Several`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file exists but could not be read.
    #[error("{}: cannot read the file: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        source: io::Error,
    },
    /// `HARDENED_CONFIG` names a file that does not exist.
    #[error("{}: no such file (named by HARDENED_CONFIG)", path.display())]
    Missing {
        /// The file named.
        path: PathBuf,
    },
    /// The file is not valid TOML; the message is the TOML parser's, with the line and column (and the
    /// secrets of the URLs on the line it shows masked).
    #[error("{origin}: {message}")]
    Syntax {
        /// The file.
        origin: String,
        /// The line of the error, from 1.
        line: Option<usize>,
        /// The column of the error, from 1.
        column: Option<usize>,
        /// The parser's message, which shows the line and points at the column.
        message: String,
    },
    /// The service level objectives cannot be judged with these numbers (see `hardened::slo`).
    #[error("{0}")]
    Objectives(#[from] hardened_core::slo::SloErrors),
    /// A value that is of the wrong type or out of range.
    #[error("{setting} {problem}; allowed: {allowed}")]
    Invalid {
        /// The setting at fault (boxed to keep the error small).
        setting: Box<Setting>,
        /// What is wrong, such as `is out of range`.
        problem: String,
        /// What would be right, such as `a whole number from 1 to 100`.
        allowed: String,
    },
    /// A key that no section of this kind has.
    #[error("{origin}: unknown key {path}; {}allowed keys: {}", did_you_mean(*.suggestion), .allowed.join(", "))]
    UnknownKey {
        /// Where it was written.
        origin: Origin,
        /// The key path, such as `breaker.llm.failur_rate`.
        path: String,
        /// The closest allowed key, when one is close.
        suggestion: Option<&'static str>,
        /// The keys this kind of section has.
        allowed: &'static [&'static str],
    },
    /// A top-level section that is no kind of guard (`breaker`, `rate`, ...) and no other section.
    #[error(
        "{origin}: unknown section {section}; {}allowed sections: {}",
        did_you_mean(*.suggestion),
        .allowed.join(", ")
    )]
    UnknownSection {
        /// Where it was written.
        origin: Origin,
        /// The section as written.
        section: String,
        /// The closest allowed section, when one is close.
        suggestion: Option<&'static str>,
        /// The sections there are.
        allowed: &'static [&'static str],
    },
    /// A section name that no guard can have.
    #[error("{origin}: [{path}] is not a guard name; allowed: ASCII letters, digits, _, ., : and -")]
    InvalidName {
        /// Where it was written.
        origin: Origin,
        /// The section, such as `breaker."my llm"`.
        path: String,
    },
    /// A `HARDENED_*__*` variable without the `HARDENED_<SECTION>__<NAME>__<KEY>` shape of a guard's section
    /// or the `HARDENED_<SECTION>__<KEY>` shape of a section of the service.
    #[error(
        "{variable}: not a configuration override; allowed: HARDENED_<SECTION>__<NAME>__<KEY> for guards, such as \
         HARDENED_BREAKER__LLM__FAILURE_RATE, and HARDENED_<SECTION>__<KEY> for telemetry, health, shutdown and \
         server, such as HARDENED_SHUTDOWN__DEADLINE"
    )]
    Malformed {
        /// The variable.
        variable: String,
    },
    /// A variable whose name part matches more than one section once `-`, `.` and `:` are read as `_`.
    #[error(
        "{variable}: {name} could name any of {}; the environment cannot tell them apart, so rename one of them",
        .candidates.join(", ")
    )]
    Ambiguous {
        /// The variable.
        variable: String,
        /// The name part of the variable, such as `SEARCH_API`.
        name: String,
        /// The sections it could name, such as `[rate.search-api]` and `[rate.search_api]`.
        candidates: Vec<String>,
    },
    /// Several variables that set the same key.
    #[error("{} each set {path}; keep one of them", .variables.join(", "))]
    Repeated {
        /// The variables.
        variables: Vec<String>,
        /// The key path they set.
        path: String,
    },
    /// More than one of the above, one per line.
    #[error("{}", lines(.0))]
    Several(Vec<ConfigError>),
}

impl ConfigError {
    /// The single errors: the list of [`ConfigError::Several`], or this error alone.
    pub fn iter(&self) -> impl Iterator<Item = &ConfigError> {
        match self {
            ConfigError::Several(errors) => errors.iter(),
            single => std::slice::from_ref(single).iter(),
        }
    }

    /// `Ok(())` for no errors, the error itself for one, [`ConfigError::Several`] for more.
    pub(super) fn gather(errors: Vec<ConfigError>) -> Result<(), ConfigError> {
        let mut flat: Vec<ConfigError> = Vec::with_capacity(errors.len());
        for error in errors {
            match error {
                ConfigError::Several(inner) => flat.extend(inner),
                single => flat.push(single),
            }
        }
        match flat.len() {
            0 => Ok(()),
            1 => Err(flat.remove(0)),
            _ => Err(ConfigError::Several(flat)),
        }
    }
}

fn did_you_mean(suggestion: Option<&str>) -> String {
    suggestion.map(|suggestion| format!("did you mean {suggestion}? ")).unwrap_or_default()
}

fn lines(errors: &[ConfigError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}
