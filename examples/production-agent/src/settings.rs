//! The agent's configuration: `hardened.toml` (guards, telemetry, health, shutdown, server) read by
//! `hardened::config`, and `agent.toml` (the model, the API keys, the tools, the audit trail), from a
//! configuration directory or, without one, the development defaults embedded in the binary.
//! Environment variables override both; see the README.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The development defaults, embedded so that the server runs on a fresh machine with no file at all.
const EMBEDDED_HARDENED: &str = include_str!("../config/development/hardened.toml");
const EMBEDDED_AGENT: &str = include_str!("../config/development/agent.toml");

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SettingsError {
    #[error(transparent)]
    Hardened(#[from] hardened::config::ConfigError),
    #[error("{path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

/// Everything the server runs with.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) hardened: Arc<hardened::config::Config>,
    pub(crate) agent: AgentSettings,
}

/// `agent.toml`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AgentSettings {
    #[serde(default)]
    pub(crate) model: ModelSettings,
    /// The API keys that may call the service, and what each may do.
    #[serde(default)]
    pub(crate) keys: Vec<KeySettings>,
    #[serde(default)]
    pub(crate) fetch: FetchSettings,
    #[serde(default)]
    pub(crate) audit: AuditSettings,
    #[serde(default)]
    pub(crate) sessions: SessionSettings,
}

/// How long sessions live and how much of each is kept: sessions are held in memory.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct SessionSettings {
    /// A session unused for this long is ended (audited as `SessionEnd`) and forgotten; a duration
    /// such as "30m" or "1h".
    pub(crate) idle_timeout: String,
    /// The most messages a session's transcript keeps, the oldest going first; at least the model's
    /// context window.
    pub(crate) max_messages: usize,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings { idle_timeout: "1h".to_owned(), max_messages: 1_000 }
    }
}

impl SessionSettings {
    /// `idle_timeout`, checked at load.
    pub(crate) fn idle_timeout(&self) -> Result<std::time::Duration, String> {
        humantime::parse_duration(&self.idle_timeout).ok().filter(|timeout| !timeout.is_zero()).ok_or_else(|| {
            format!(
                "sessions.idle_timeout = {:?}; allowed: a duration above zero, such as \"30m\" or \"1h\"",
                self.idle_timeout
            )
        })
    }
}

/// Which model answers, and how.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ModelSettings {
    /// `auto` (Anthropic when `ANTHROPIC_API_KEY` is set, else an OpenAI-compatible endpoint when
    /// `OPENAI_BASE_URL` is set, else the scripted model), `scripted`, `anthropic` or `openai`.
    pub(crate) backend: Backend,
    /// The model's identifier for the provider; each backend has a default.
    pub(crate) name: Option<String>,
    /// The base URL of an OpenAI-compatible endpoint (`OPENAI_BASE_URL` overrides it).
    pub(crate) base_url: Option<String>,
    /// The most tokens one answer may take.
    pub(crate) max_tokens: u32,
    /// Model calls one message may take, tool calls in between.
    pub(crate) max_steps: u32,
}

impl Default for ModelSettings {
    fn default() -> Self {
        ModelSettings { backend: Backend::Auto, name: None, base_url: None, max_tokens: 1024, max_steps: 4 }
    }
}

/// A model backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Backend {
    Auto,
    Scripted,
    Anthropic,
    Openai,
}

/// One API key.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeySettings {
    /// Who holds it: the `user_id` of its audit events.
    pub(crate) name: String,
    /// The key itself; prefer `key_env`, so that no secret sits in a file.
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "redacted")]
    pub(crate) key: Option<String>,
    /// The environment variable holding the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) key_env: Option<String>,
    /// The tools it may use; `["*"]` for all.
    #[serde(default = "all_tools")]
    pub(crate) tools: Vec<String>,
    /// Whether it may change the fault injection at run time.
    #[serde(default)]
    pub(crate) admin: bool,
}

fn all_tools() -> Vec<String> {
    vec!["*".to_owned()]
}

#[expect(clippy::ref_option, reason = "the signature serde's `serialize_with` asks for")]
fn redacted<S: serde::Serializer>(key: &Option<String>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(if key.is_some() { "[redacted]" } else { "" })
}

/// The HTTP fetch tool.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct FetchSettings {
    /// Hosts the tool may fetch from; any other is refused before a connection is made.
    pub(crate) allow_hosts: Vec<String>,
    /// The most bytes of a body the tool reads.
    pub(crate) max_bytes: usize,
}

impl Default for FetchSettings {
    fn default() -> Self {
        FetchSettings { allow_hosts: Vec::new(), max_bytes: 64 * 1024 }
    }
}

/// The audit trail: a JSONL file, or `PostgreSQL` when `DATABASE_URL` is set; its checkpoints signed with
/// a key kept apart from the log.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct AuditSettings {
    /// The JSONL file (`AGENT_AUDIT_PATH` overrides it).
    pub(crate) path: PathBuf,
    /// The `PostgreSQL` schema of the audit table, when auditing to `PostgreSQL`.
    pub(crate) schema: Option<String>,
    /// Whether checkpoints are signed: `required` (no start without a key), `development` (a key made
    /// beside the audit folder when none is set), `off` (unsigned: the chain proves the log consistent,
    /// not authentic).
    pub(crate) signing: Signing,
    /// The Ed25519 private key (PEM, PKCS#8) that signs checkpoints; `AGENT_AUDIT_SIGNING_KEY_FILE`
    /// overrides it. Keep it off the audit log's storage.
    pub(crate) signing_key_file: Option<PathBuf>,
    /// Public keys (PEM) `audit verify` checks checkpoints with when none is given on its command line:
    /// the current key's and those of keys it replaced.
    pub(crate) public_key_files: Vec<PathBuf>,
    /// A checkpoint every this many records at most.
    pub(crate) checkpoint_every_events: u64,
    /// A checkpoint at least this often while records come, such as "60s".
    pub(crate) checkpoint_every: String,
    /// Also log each checkpoint, so that a copy leaves the host with the logs.
    pub(crate) checkpoints_to_log: bool,
}

/// Whether audit checkpoints are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Signing {
    /// A key must be set: without one the server does not start.
    Required,
    /// The key set, else one made (and kept) beside the audit folder, with a warning.
    Development,
    /// No checkpoints.
    Off,
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            path: PathBuf::from("data/audit/audit.jsonl"),
            schema: None,
            signing: Signing::Required,
            signing_key_file: None,
            public_key_files: Vec::new(),
            checkpoint_every_events: 1_000,
            checkpoint_every: "60s".to_owned(),
            checkpoints_to_log: true,
        }
    }
}

impl AuditSettings {
    /// The checkpoint interval in time.
    pub(crate) fn checkpoint_every(&self) -> Result<std::time::Duration, String> {
        humantime::parse_duration(&self.checkpoint_every).ok().filter(|every| !every.is_zero()).ok_or_else(|| {
            format!(
                "audit.checkpoint_every = {:?}; allowed: a duration above zero, such as \"60s\" or \"5m\"",
                self.checkpoint_every
            )
        })
    }

    /// Rules serde cannot state.
    fn check(&self) -> Result<(), String> {
        self.checkpoint_every()?;
        if self.checkpoint_every_events == 0 {
            return Err("audit.checkpoint_every_events = 0; allowed: a whole number from 1".to_owned());
        }
        Ok(())
    }

    /// Where the development key goes: beside the audit folder, not in it.
    pub(crate) fn development_key_file(&self) -> PathBuf {
        let folder = self.path.parent().filter(|parent| !parent.as_os_str().is_empty());
        let beside = folder.and_then(Path::parent).filter(|parent| !parent.as_os_str().is_empty());
        beside.unwrap_or(Path::new(".")).join("audit-dev-signing.pem")
    }
}

impl Settings {
    /// Reads `hardened.toml` and `agent.toml` from `dir`, or the embedded defaults, with the environment
    /// over them, and installs the `hardened` part as the configuration in force.
    pub(crate) fn load(dir: Option<&Path>) -> Result<Settings, SettingsError> {
        let (hardened_text, hardened_origin, agent_text, agent_origin) = match dir {
            Some(dir) => {
                let read = |file: &str| {
                    let path = dir.join(file);
                    std::fs::read_to_string(&path)
                        .map(|text| (text, path.display().to_string()))
                        .map_err(|source| SettingsError::Read { path: path.display().to_string(), source })
                };
                let (hardened_text, hardened_origin) = read("hardened.toml")?;
                let (agent_text, agent_origin) = read("agent.toml")?;
                (hardened_text, hardened_origin, agent_text, agent_origin)
            }
            None => (
                EMBEDDED_HARDENED.to_owned(),
                "embedded config/development/hardened.toml".to_owned(),
                EMBEDDED_AGENT.to_owned(),
                "embedded config/development/agent.toml".to_owned(),
            ),
        };
        let hardened = hardened::config::load_text(&hardened_text, &hardened_origin)?;
        let mut agent: AgentSettings = toml::from_str(&agent_text)
            .map_err(|error| SettingsError::Invalid { path: agent_origin.clone(), message: error.to_string() })?;
        agent
            .apply_env(std::env::vars())
            .map_err(|message| SettingsError::Invalid { path: agent_origin.clone(), message })?;
        agent.check().map_err(|message| SettingsError::Invalid { path: agent_origin, message })?;
        Ok(Settings { hardened, agent })
    }

    /// The settings in force, as TOML: `hardened`'s with every default, then the agent's, keys redacted.
    pub(crate) fn effective(&self) -> String {
        let mut out = hardened::config::effective();
        let agent = toml::to_string(&self.agent).unwrap_or_else(|error| format!("# not printable: {error}\n"));
        let _ = write!(out, "\n# agent.toml\n{agent}");
        out
    }
}

impl AgentSettings {
    /// `AGENT_API_KEYS` (`name=key,name=key`: keys for every tool), `AGENT_AUDIT_PATH`,
    /// `AGENT_AUDIT_SIGNING_KEY_FILE`, `OPENAI_BASE_URL`.
    fn apply_env(&mut self, vars: impl Iterator<Item = (String, String)>) -> Result<(), String> {
        for (variable, value) in vars {
            match variable.as_str() {
                "AGENT_API_KEYS" => {
                    for entry in value.split(',').map(str::trim).filter(|entry| !entry.is_empty()) {
                        let Some((name, key)) = entry.split_once('=') else {
                            return Err(format!(
                                "AGENT_API_KEYS: `{entry}` is not `name=key`; allowed: comma-separated name=key pairs"
                            ));
                        };
                        self.keys.push(KeySettings {
                            name: name.trim().to_owned(),
                            key: Some(key.trim().to_owned()),
                            key_env: None,
                            tools: all_tools(),
                            admin: false,
                        });
                    }
                }
                "AGENT_AUDIT_PATH" if !value.is_empty() => self.audit.path = PathBuf::from(value),
                "AGENT_AUDIT_SIGNING_KEY_FILE" if !value.is_empty() => {
                    self.audit.signing_key_file = Some(PathBuf::from(value));
                }
                "OPENAI_BASE_URL" if !value.is_empty() => self.model.base_url = Some(value),
                _ => {}
            }
        }
        Ok(())
    }

    /// Rules serde cannot state: every key resolvable, names unique, tools known.
    fn check(&self) -> Result<(), String> {
        let mut names = std::collections::BTreeSet::new();
        for (index, key) in self.keys.iter().enumerate() {
            if !names.insert(key.name.as_str()) {
                return Err(format!("keys[{index}].name = {:?} is repeated; allowed: a name per key", key.name));
            }
            if key.secret().is_none() {
                return Err(format!(
                    "keys[{index}] ({}) has no key: set `key`, or `key_env` to a variable that is set",
                    key.name
                ));
            }
            for tool in &key.tools {
                if tool != "*" && !crate::tools::NAMES.contains(&tool.as_str()) {
                    return Err(format!(
                        "keys[{index}].tools holds {tool:?}; allowed: \"*\" or any of {}",
                        crate::tools::NAMES.join(", ")
                    ));
                }
            }
        }
        if self.model.max_steps == 0 {
            return Err("model.max_steps = 0; allowed: a whole number from 1".to_owned());
        }
        self.sessions.idle_timeout()?;
        self.audit.check()?;
        if self.sessions.max_messages < crate::agent::CONTEXT_MESSAGES {
            return Err(format!(
                "sessions.max_messages = {}; allowed: a whole number from {} (the model's context)",
                self.sessions.max_messages,
                crate::agent::CONTEXT_MESSAGES
            ));
        }
        Ok(())
    }
}

impl KeySettings {
    /// The key, from the file or the variable `key_env` names.
    pub(crate) fn secret(&self) -> Option<String> {
        match (&self.key, &self.key_env) {
            (Some(key), _) if !key.is_empty() => Some(key.clone()),
            (_, Some(variable)) => std::env::var(variable).ok().filter(|key| !key.is_empty()),
            _ => None,
        }
    }

    /// Whether this key may use `tool`.
    pub(crate) fn allows(&self, tool: &str) -> bool {
        self.tools.iter().any(|allowed| allowed == "*" || allowed == tool)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_sessions(idle_timeout: &str, max_messages: usize) -> AgentSettings {
        AgentSettings {
            sessions: SessionSettings { idle_timeout: idle_timeout.to_owned(), max_messages },
            ..AgentSettings::default()
        }
    }

    #[test]
    fn session_limits_are_checked_with_what_is_allowed() {
        assert!(with_sessions("30m", 32).check().is_ok());
        assert_eq!(
            with_sessions("soon", 1000).check(),
            Err("sessions.idle_timeout = \"soon\"; allowed: a duration above zero, such as \"30m\" or \"1h\""
                .to_owned())
        );
        assert!(with_sessions("0s", 1000).check().is_err(), "a zero timeout would end sessions at once");
        assert_eq!(
            with_sessions("1h", 31).check(),
            Err("sessions.max_messages = 31; allowed: a whole number from 32 (the model's context)".to_owned())
        );
    }

    #[test]
    fn the_embedded_defaults_bound_sessions() {
        let agent: AgentSettings = toml::from_str(EMBEDDED_AGENT).expect("the embedded agent.toml parses");
        assert_eq!(agent.sessions.idle_timeout().expect("valid"), std::time::Duration::from_hours(1));
        assert_eq!(agent.sessions.max_messages, 1_000);
    }
}
