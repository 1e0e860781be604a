//! The agent's configuration: `hardened.toml` (guards, telemetry, health, shutdown, server) read by
//! `hardened::config`, and `agent.toml` (the model, the API keys, the tools, the audit trail), from a
//! configuration directory or, without one, the development defaults embedded in the binary.
//! Environment variables override both; see the README.

mod secret;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub(crate) use self::secret::Secret;

/// The development defaults, embedded so that the server runs on a fresh machine with no file at all.
const EMBEDDED_HARDENED: &str = include_str!("../config/development/hardened.toml");
const EMBEDDED_AGENT: &str = include_str!("../config/development/agent.toml");

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// `hardened.toml`, or the environment over it, is invalid.
    #[error(transparent)]
    Hardened(#[from] hardened::config::ConfigError),
    /// A file of the configuration directory could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// `agent.toml`, or the environment over it, is invalid.
    #[error("{path}: {message}")]
    Invalid {
        /// The file, or the embedded defaults.
        path: String,
        /// What is wrong, and where.
        message: String,
    },
}

/// Everything the server runs with.
#[derive(Debug, Clone)]
pub struct Settings {
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
    /// Limits every tool call is held to, and the memory tool's.
    #[serde(default)]
    pub(crate) tools: ToolSettings,
    #[serde(default)]
    pub(crate) audit: AuditSettings,
    #[serde(default)]
    pub(crate) sessions: SessionSettings,
    #[serde(default)]
    pub(crate) auth: AuthSettings,
    /// Where the service runs, from `AGENT_ENV`: not a key of the file.
    #[serde(skip)]
    pub(crate) environment: Environment,
}

/// Where the service runs: `AGENT_ENV=development` (the default) or `AGENT_ENV=production`, which refuses
/// the development keys embedded in the binary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Environment {
    #[default]
    Development,
    Production,
}

impl Environment {
    fn parse(value: &str) -> Result<Environment, String> {
        match value {
            "" | "development" => Ok(Environment::Development),
            "production" => Ok(Environment::Production),
            _ => Err(format!("AGENT_ENV = {value:?}; allowed: \"development\", \"production\"")),
        }
    }
}

/// Failed authentications: each client address may fail `failures_per_address` times per
/// `failure_interval`, and is then answered 429 until the interval ends; its failures of an interval are
/// audited as one `AuthenticationAttempt` with their count.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct AuthSettings {
    /// The failed attempts an address may make per interval.
    pub(crate) failures_per_address: u32,
    /// The interval, from an address's first failure; a duration such as "1m".
    pub(crate) failure_interval: String,
    /// The most addresses followed at once; past it the one followed longest is let go (its failures
    /// audited then).
    pub(crate) tracked_addresses: usize,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings { failures_per_address: 10, failure_interval: "1m".to_owned(), tracked_addresses: 10_000 }
    }
}

impl AuthSettings {
    /// `failure_interval`, checked at load.
    pub(crate) fn failure_interval(&self) -> Result<std::time::Duration, String> {
        humantime::parse_duration(&self.failure_interval).ok().filter(|interval| !interval.is_zero()).ok_or_else(|| {
            format!(
                "auth.failure_interval = {:?}; allowed: a duration above zero, such as \"1m\"",
                self.failure_interval
            )
        })
    }

    fn check(&self) -> Result<(), String> {
        self.failure_interval()?;
        at_least_one("auth.failures_per_address", usize::try_from(self.failures_per_address).unwrap_or(usize::MAX))?;
        at_least_one("auth.tracked_addresses", self.tracked_addresses)
    }
}

fn at_least_one(key: &str, value: usize) -> Result<(), String> {
    if value == 0 { Err(format!("{key} = 0; allowed: a whole number from 1")) } else { Ok(()) }
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
    /// The most bytes of a transcript's messages, the oldest going first beyond them (the latest message
    /// always stays); at least `max_message_bytes`.
    pub(crate) max_transcript_bytes: usize,
    /// The most bytes of one message's content; a longer one is refused with 413.
    pub(crate) max_message_bytes: usize,
    /// The most sessions one key may hold open; one more is refused with 429.
    pub(crate) max_per_key: usize,
    /// The most sessions open at once, all keys together; one more is refused with 429.
    pub(crate) max_total: usize,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            idle_timeout: "1h".to_owned(),
            max_messages: 1_000,
            max_transcript_bytes: 256 * 1024,
            max_message_bytes: 16 * 1024,
            max_per_key: 100,
            max_total: 1_000,
        }
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) key: Option<Secret>,
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

/// The HTTP fetch tool.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct FetchSettings {
    /// Hosts the tool may fetch from, on the first URL and on every redirect; any other is refused before
    /// a connection is made. A literal address here may be reached even when it is private.
    pub(crate) allow_hosts: Vec<String>,
    /// Addresses the tool may connect to although they are loopback, private, link-local, unique-local,
    /// shared (CGNAT) or a cloud's metadata service; every other such address is refused, whatever name
    /// resolves to it.
    pub(crate) allow_private: Vec<String>,
    /// The most redirects one fetch follows, each checked like the first URL.
    pub(crate) max_redirects: usize,
    /// The most bytes of a body the tool reads.
    pub(crate) max_bytes: usize,
}

impl Default for FetchSettings {
    fn default() -> Self {
        FetchSettings { allow_hosts: Vec::new(), allow_private: Vec::new(), max_redirects: 5, max_bytes: 64 * 1024 }
    }
}

impl FetchSettings {
    /// `allow_private`, parsed.
    pub(crate) fn allow_private_addresses(&self) -> Result<Vec<std::net::IpAddr>, String> {
        self.allow_private
            .iter()
            .enumerate()
            .map(|(index, address)| {
                address.parse().map_err(|_| {
                    format!(
                        "fetch.allow_private[{index}] = {address:?}; allowed: an IP address such as \"127.0.0.1\" \
                         or \"::1\""
                    )
                })
            })
            .collect()
    }

    fn check(&self) -> Result<(), String> {
        self.allow_private_addresses()?;
        if self.max_redirects > 20 {
            return Err(format!("fetch.max_redirects = {}; allowed: 0 to 20", self.max_redirects));
        }
        if self.max_bytes == 0 {
            return Err("fetch.max_bytes = 0; allowed: a whole number from 1".to_owned());
        }
        Ok(())
    }
}

/// Limits of every tool call: `[tools]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ToolSettings {
    /// The most bytes a tool call's input may take, as JSON; a larger one is refused before any tool
    /// parses it.
    pub(crate) max_input_bytes: usize,
    /// The memory tool's limits.
    pub(crate) memory: MemorySettings,
}

impl Default for ToolSettings {
    fn default() -> Self {
        ToolSettings { max_input_bytes: 8 * 1024, memory: MemorySettings::default() }
    }
}

/// The memory tool's limits, per session: `[tools.memory]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
#[expect(clippy::struct_field_names, reason = "the configuration's keys, named as the other limits are")]
pub(crate) struct MemorySettings {
    /// The most values one session remembers.
    pub(crate) max_entries: usize,
    /// The longest key, in bytes.
    pub(crate) max_key_bytes: usize,
    /// The longest value, in bytes.
    pub(crate) max_value_bytes: usize,
}

impl Default for MemorySettings {
    fn default() -> Self {
        MemorySettings { max_entries: 100, max_key_bytes: 128, max_value_bytes: 4 * 1024 }
    }
}

impl ToolSettings {
    fn check(&self) -> Result<(), String> {
        for (key, value) in [
            ("tools.max_input_bytes", self.max_input_bytes),
            ("tools.memory.max_entries", self.memory.max_entries),
            ("tools.memory.max_key_bytes", self.memory.max_key_bytes),
            ("tools.memory.max_value_bytes", self.memory.max_value_bytes),
        ] {
            if value == 0 {
                return Err(format!("{key} = 0; allowed: a whole number from 1"));
            }
        }
        Ok(())
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
    /// `hardened.toml` is loaded so that a reload (`SIGHUP`, `POST /config/reload` on the admin listener)
    /// reads it again from the same place.
    pub fn load(dir: Option<&Path>) -> Result<Settings, SettingsError> {
        let (hardened, agent_text, agent_origin) = match dir {
            Some(dir) => {
                let read = |file: &str| {
                    let path = dir.join(file);
                    std::fs::read_to_string(&path)
                        .map(|text| (text, path.display().to_string()))
                        .map_err(|source| SettingsError::Read { path: path.display().to_string(), source })
                };
                // Read first for the same error as `agent.toml`'s when it is missing or unreadable.
                read("hardened.toml")?;
                let hardened = hardened::config::load_file(dir.join("hardened.toml"))?;
                let (agent_text, agent_origin) = read("agent.toml")?;
                (hardened, agent_text, agent_origin)
            }
            None => (
                hardened::config::load_text(EMBEDDED_HARDENED, "embedded config/development/hardened.toml")?,
                EMBEDDED_AGENT.to_owned(),
                "embedded config/development/agent.toml".to_owned(),
            ),
        };
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
    /// `AGENT_API_KEYS` (`name=key,name=key`: keys for every tool), `AGENT_ENV`, `AGENT_AUDIT_PATH`,
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
                            key: Some(Secret::new(key.trim())),
                            key_env: None,
                            tools: all_tools(),
                            admin: false,
                        });
                    }
                }
                "AGENT_ENV" => self.environment = Environment::parse(&value)?,
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

    /// Rules serde cannot state: every key resolvable, names and secrets unique, tools known, no
    /// development key in production, limits in range.
    fn check(&self) -> Result<(), String> {
        let mut names = std::collections::BTreeSet::new();
        let mut secrets: Vec<(usize, &str, Secret)> = Vec::new();
        let development_keys = match self.environment {
            Environment::Production => embedded_development_keys(),
            Environment::Development => Vec::new(),
        };
        for (index, key) in self.keys.iter().enumerate() {
            if !names.insert(key.name.as_str()) {
                return Err(format!("keys[{index}].name = {:?} is repeated; allowed: a name per key", key.name));
            }
            let Some(secret) = key.secret() else {
                return Err(format!(
                    "keys[{index}] ({}) has no key: set `key`, or `key_env` to a variable that is set",
                    key.name
                ));
            };
            if let Some((earlier, name, _)) = secrets.iter().find(|(_, _, earlier)| earlier.matches_secret(&secret)) {
                return Err(format!(
                    "keys[{index}] ({}) has the same key as keys[{earlier}] ({name}); allowed: a distinct key per name",
                    key.name
                ));
            }
            if development_keys.iter().any(|development| development.matches_secret(&secret)) {
                return Err(format!(
                    "keys[{index}] ({}) is a development key of the embedded config/development/agent.toml, refused \
                     with AGENT_ENV=production; allowed: a key of the deployment's own, from `key_env` or AGENT_API_KEYS",
                    key.name
                ));
            }
            secrets.push((index, key.name.as_str(), secret));
            for tool in &key.tools {
                if tool != "*" && !crate::tool_names::NAMES.contains(&tool.as_str()) {
                    return Err(format!(
                        "keys[{index}].tools holds {tool:?}; allowed: \"*\" or any of {}",
                        crate::tool_names::NAMES.join(", ")
                    ));
                }
            }
        }
        self.fetch.check()?;
        self.tools.check()?;
        if self.model.max_steps == 0 {
            return Err("model.max_steps = 0; allowed: a whole number from 1".to_owned());
        }
        self.audit.check()?;
        self.sessions.check()?;
        self.auth.check()
    }
}

/// The keys of the embedded development `agent.toml`, which production refuses.
fn embedded_development_keys() -> Vec<Secret> {
    let embedded: AgentSettings = toml::from_str(EMBEDDED_AGENT).unwrap_or_default();
    embedded.keys.into_iter().filter_map(|key| key.key).filter(|key| !key.is_empty()).collect()
}

impl SessionSettings {
    fn check(&self) -> Result<(), String> {
        self.idle_timeout()?;
        if self.max_messages < crate::conversation::CONTEXT_MESSAGES {
            return Err(format!(
                "sessions.max_messages = {}; allowed: a whole number from {} (the model's context)",
                self.max_messages,
                crate::conversation::CONTEXT_MESSAGES
            ));
        }
        at_least_one("sessions.max_message_bytes", self.max_message_bytes)?;
        at_least_one("sessions.max_per_key", self.max_per_key)?;
        at_least_one("sessions.max_total", self.max_total)?;
        if self.max_transcript_bytes < self.max_message_bytes {
            return Err(format!(
                "sessions.max_transcript_bytes = {}; allowed: a whole number from sessions.max_message_bytes ({})",
                self.max_transcript_bytes, self.max_message_bytes
            ));
        }
        Ok(())
    }
}

impl KeySettings {
    /// The key, from the file or the variable `key_env` names.
    pub(crate) fn secret(&self) -> Option<Secret> {
        match (&self.key, &self.key_env) {
            (Some(key), _) if !key.is_empty() => Some(key.clone()),
            (_, Some(variable)) => std::env::var(variable).ok().filter(|key| !key.is_empty()).map(Secret::new),
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
            sessions: SessionSettings {
                idle_timeout: idle_timeout.to_owned(),
                max_messages,
                ..SessionSettings::default()
            },
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

    fn key(name: &str, secret: &str) -> KeySettings {
        KeySettings {
            name: name.to_owned(),
            key: Some(Secret::new(secret)),
            key_env: None,
            tools: all_tools(),
            admin: false,
        }
    }

    #[test]
    fn two_keys_with_one_secret_are_refused_naming_both_and_not_the_secret() {
        let agent = AgentSettings {
            keys: vec![key("alice", "shared-4711"), key("bob", "own"), key("carol", "shared-4711")],
            ..AgentSettings::default()
        };
        let error = agent.check().expect_err("a shared secret is refused");
        assert_eq!(error, "keys[2] (carol) has the same key as keys[0] (alice); allowed: a distinct key per name");
    }

    #[test]
    fn production_refuses_the_embedded_development_keys_and_accepts_its_own() {
        let mut agent: AgentSettings = toml::from_str(EMBEDDED_AGENT).expect("the embedded agent.toml parses");
        assert!(agent.check().is_ok(), "fine in development");
        agent.apply_env([("AGENT_ENV".to_owned(), "production".to_owned())].into_iter()).expect("a known value");
        let error = agent.check().expect_err("refused in production");
        assert!(error.starts_with("keys[0] (developer) is a development key"), "{error}");
        assert!(!error.contains("dev-key"), "{error}");
        agent.keys = vec![key("operator", "a-key-of-its-own")];
        assert!(agent.check().is_ok());
        assert_eq!(
            agent.apply_env([("AGENT_ENV".to_owned(), "prod".to_owned())].into_iter()),
            Err("AGENT_ENV = \"prod\"; allowed: \"development\", \"production\"".to_owned())
        );
    }

    #[test]
    fn no_key_type_prints_its_secret() {
        let settings = key("alice", "planted-4711");
        assert!(!format!("{settings:?}").contains("planted-4711"));
        assert!(!toml::to_string(&settings).expect("serializes").contains("planted-4711"));
    }

    #[test]
    fn limits_are_checked_with_what_is_allowed() {
        let over = |sessions: SessionSettings| AgentSettings { sessions, ..AgentSettings::default() }.check();
        assert_eq!(
            over(SessionSettings { max_per_key: 0, ..SessionSettings::default() }),
            Err("sessions.max_per_key = 0; allowed: a whole number from 1".to_owned())
        );
        assert_eq!(
            over(SessionSettings { max_transcript_bytes: 10, max_message_bytes: 11, ..SessionSettings::default() }),
            Err("sessions.max_transcript_bytes = 10; allowed: a whole number from sessions.max_message_bytes (11)"
                .to_owned())
        );
        let auth = |auth: AuthSettings| AgentSettings { auth, ..AgentSettings::default() }.check();
        assert_eq!(
            auth(AuthSettings { failure_interval: "never".to_owned(), ..AuthSettings::default() }),
            Err("auth.failure_interval = \"never\"; allowed: a duration above zero, such as \"1m\"".to_owned())
        );
        assert!(auth(AuthSettings { failures_per_address: 0, ..AuthSettings::default() }).is_err());
    }

    #[test]
    fn fetch_and_tool_settings_are_checked_with_what_is_allowed() {
        let mut agent = AgentSettings::default();
        agent.fetch.allow_private = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
        assert_eq!(
            agent.check(),
            Err("fetch.allow_private[1] = \"localhost\"; allowed: an IP address such as \"127.0.0.1\" or \"::1\""
                .to_owned())
        );
        agent.fetch.allow_private.pop();
        assert!(agent.check().is_ok());
        agent.tools.memory.max_entries = 0;
        assert_eq!(agent.check(), Err("tools.memory.max_entries = 0; allowed: a whole number from 1".to_owned()));
    }

    #[test]
    fn the_configurations_keep_the_demo_on_loopback_and_production_strict() {
        let development: AgentSettings = toml::from_str(EMBEDDED_AGENT).expect("the embedded agent.toml parses");
        assert!(development.fetch.allow_private.contains(&"127.0.0.1".to_owned()));
        let production: AgentSettings =
            toml::from_str(include_str!("../config/production/agent.toml")).expect("the production agent.toml parses");
        assert!(production.fetch.allow_private.is_empty(), "production reaches no internal address");
        assert!(production.fetch.allow_hosts.iter().all(|host| host.parse::<std::net::IpAddr>().is_err()));
        assert_eq!(production.tools.memory.max_entries, 100);
    }

    #[test]
    fn the_embedded_defaults_bound_sessions() {
        let agent: AgentSettings = toml::from_str(EMBEDDED_AGENT).expect("the embedded agent.toml parses");
        assert_eq!(agent.sessions.idle_timeout().expect("valid"), std::time::Duration::from_hours(1));
        assert_eq!(agent.sessions.max_messages, 1_000);
        let defaults = SessionSettings::default();
        assert_eq!((agent.sessions.max_per_key, agent.sessions.max_total), (defaults.max_per_key, defaults.max_total));
        assert_eq!(agent.sessions.max_message_bytes, defaults.max_message_bytes);
        assert_eq!(agent.sessions.max_transcript_bytes, defaults.max_transcript_bytes);
    }
}
