//! The agent's tools, each a `#[hardened]` function with its own guards and audit, and the dispatcher
//! that checks a key may use a tool (an audited authorization decision) before running it.

mod faults;

use std::collections::BTreeMap;

use hardened::audit::{AuditEvent, EventType};
use hardened::hardened;
use serde::Serialize;
use serde_json::{Value, json};

pub(crate) use self::faults::{FaultSettings, Faults};
use crate::sessions::Session;
use crate::settings::FetchSettings;
use crate::trail;

/// Every tool, as keys name them.
pub(crate) const NAMES: &[&str] = &["calculator", "clock", "fetch", "memory", "faulty"];

/// A tool as a model sees it.
#[derive(Debug)]
pub(crate) struct ToolSpec {
    pub(crate) name: &'static str,
    pub(crate) description: &'static str,
    /// The JSON schema of its input.
    pub(crate) schema: fn() -> Value,
}

/// The tools offered to the model.
pub(crate) const SPECS: &[ToolSpec] = &[
    ToolSpec {
        name: "calculator",
        description: "Evaluates an arithmetic expression with + - * / ^ and parentheses.",
        schema: || json!({ "type": "object", "properties": { "expression": { "type": "string" } }, "required": ["expression"] }),
    },
    ToolSpec {
        name: "clock",
        description: "The current date and time in UTC.",
        schema: || json!({ "type": "object", "properties": {} }),
    },
    ToolSpec {
        name: "fetch",
        description: "Fetches a URL with GET, from an allow-list of hosts, and returns the start of its body.",
        schema: || json!({ "type": "object", "properties": { "url": { "type": "string" } }, "required": ["url"] }),
    },
    ToolSpec {
        name: "memory",
        description: "Remembers (op \"set\") or recalls (op \"get\") a value by key for this session.",
        schema: || {
            json!({
                "type": "object",
                "properties": { "op": { "enum": ["set", "get"] }, "key": { "type": "string" }, "value": { "type": "string" } },
                "required": ["op", "key"],
            })
        },
    },
    ToolSpec {
        name: "faulty",
        description: "A tool that fails and slows down as an operator sets it, to exercise the breaker.",
        schema: || json!({ "type": "object", "properties": {} }),
    },
];

/// A tool the model asked for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ToolCall {
    pub(crate) id: String,
    pub(crate) tool: String,
    pub(crate) input: Value,
}

/// What a tool call came to, as the caller sees it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ToolOutcome {
    pub(crate) tool: String,
    pub(crate) ok: bool,
    pub(crate) output: String,
}

/// Why a tool did not answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ToolError {
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("{0}")]
    Failed(String),
    #[error("refused: {0}")]
    Refused(#[from] hardened::Rejected),
}

/// What the tools share: an HTTP client, the fetch allow-list and the injected faults.
#[derive(Debug)]
pub(crate) struct Tools {
    pub(crate) http: reqwest::Client,
    pub(crate) fetch: FetchSettings,
    pub(crate) faults: Faults,
}

impl Tools {
    /// Runs `call` if `allowed` lets the caller's key use the tool; every decision is audited.
    pub(crate) async fn run(
        &self,
        session: &mut Session,
        call: &ToolCall,
        allowed: &(dyn Fn(&str) -> bool + Sync),
    ) -> ToolOutcome {
        let permitted = NAMES.contains(&call.tool.as_str()) && allowed(&call.tool);
        authorization(&call.tool, permitted, "the key's tools");
        let result = if permitted {
            self.dispatch(session, call).await
        } else {
            Err(ToolError::Failed(format!("the tool `{}` is not available to this key", call.tool)))
        };
        match result {
            Ok(output) => ToolOutcome { tool: call.tool.clone(), ok: true, output },
            Err(error) => ToolOutcome { tool: call.tool.clone(), ok: false, output: error.to_string() },
        }
    }

    async fn dispatch(&self, session: &mut Session, call: &ToolCall) -> Result<String, ToolError> {
        let text = |key: &str| {
            call.input[key]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| ToolError::InvalidInput(format!("`{key}` must be a string")))
        };
        match call.tool.as_str() {
            "calculator" => calculator(&text("expression")?),
            "clock" => clock(),
            "fetch" => {
                let url = text("url")?;
                let parsed =
                    reqwest::Url::parse(&url).map_err(|error| ToolError::InvalidInput(format!("{url}: {error}")))?;
                let host = parsed.host_str().unwrap_or_default().to_owned();
                let listed = self.fetch.allow_hosts.iter().any(|allowed| allowed.eq_ignore_ascii_case(&host));
                authorization(&format!("fetch:{host}"), listed, "the fetch allow-list");
                if !listed || !matches!(parsed.scheme(), "http" | "https") {
                    return Err(ToolError::Failed(format!("{host} is not on the fetch allow-list")));
                }
                fetch(&self.http, parsed, &host, self.fetch.max_bytes).await
            }
            "memory" => {
                let (op, key) = (text("op")?, text("key")?);
                let value = call.input["value"].as_str();
                memory(&mut session.memory, &op, &key, value)
            }
            "faulty" => faulty(&self.faults).await,
            other => Err(ToolError::InvalidInput(format!("no tool `{other}`"))),
        }
    }
}

/// An `AuthorizationCheck` event: who may use what, and by which rule.
fn authorization(resource: &str, permitted: bool, rule: &str) {
    trail::record(|| {
        AuditEvent::new(EventType::AuthorizationCheck)
            .resource(resource)
            .detail("rule", rule)
            .outcome(trail::decision(permitted))
    });
}

/// Arithmetic.
#[hardened(kind = "tool", audit, fields(expression))]
fn calculator(expression: &str) -> Result<String, ToolError> {
    crate::calculator::evaluate(expression).map(|value| value.to_string()).map_err(ToolError::InvalidInput)
}

/// The time, in UTC.
#[hardened(kind = "tool", audit)]
fn clock() -> Result<String, ToolError> {
    Ok(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// A GET from an allowed host: a breaker per host set, a rate limit, a bulkhead and a timeout, since the
/// network is the tool most likely to hang.
#[hardened(
    kind = "tool",
    audit,
    fields(host),
    breaker(name = "fetch", consecutive_failures = 5, open_for = "30s"),
    rate(name = "fetch", per_second = 20, burst = 40),
    bulkhead(name = "fetch", max = 8),
    timeout = "10s"
)]
async fn fetch(http: &reqwest::Client, url: reqwest::Url, host: &str, max_bytes: usize) -> Result<String, ToolError> {
    let mut response = http.get(url).send().await.map_err(|error| ToolError::Failed(error.to_string()))?;
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|error| ToolError::Failed(error.to_string()))? {
        body.extend_from_slice(&chunk);
        if body.len() >= max_bytes {
            body.truncate(max_bytes);
            break;
        }
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    if status.is_success() { Ok(text) } else { Err(ToolError::Failed(format!("{host} answered {status}"))) }
}

/// A value by key, per session.
#[hardened(kind = "tool", audit, fields(op, key))]
fn memory(
    memory: &mut BTreeMap<String, String>,
    op: &str,
    key: &str,
    value: Option<&str>,
) -> Result<String, ToolError> {
    match (op, value) {
        ("set", Some(value)) => {
            memory.insert(key.to_owned(), value.to_owned());
            Ok(format!("remembered {key}"))
        }
        ("get", _) => memory.get(key).cloned().ok_or_else(|| ToolError::Failed(format!("nothing remembered as {key}"))),
        ("set", None) => Err(ToolError::InvalidInput("`set` needs a `value`".to_owned())),
        (other, _) => Err(ToolError::InvalidInput(format!("`op` is `{other}`; allowed: \"set\", \"get\""))),
    }
}

/// Fails and lags as the operator sets it (`PUT /v1/admin/faults`), behind a breaker that opens at half
/// its calls failing, so that the breaker can be watched opening and closing.
#[hardened(
    kind = "tool",
    audit,
    breaker(name = "faulty", failure_rate = 50, window = 20, min_calls = 10, open_for = "5s", half_open_calls = 3),
    timeout = "5s"
)]
async fn faulty(faults: &Faults) -> Result<String, ToolError> {
    let (failure_percent, latency) = faults.current();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if fastrand::u32(0..100) < failure_percent {
        return Err(ToolError::Failed(format!("injected fault ({failure_percent}% of calls)")));
    }
    Ok(format!("ok after {} ms", latency.as_millis()))
}
