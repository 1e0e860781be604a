//! The agent's tools, each a `#[hardened]` function with its own guards and audit, and the dispatcher
//! that checks a key may use a tool (an audited authorization decision) before running it.

mod address;
mod arguments;
mod faults;
mod fetch;
mod memory;
pub(crate) mod redact;

use hardened::audit::{AuditEvent, EventType};
use hardened::hardened;
use serde::Serialize;
use serde_json::{Value, json};

use self::arguments::Arguments;
pub(crate) use self::faults::{FaultSettings, Faults};
use self::fetch::Fetcher;
use crate::sessions::Session;
use crate::settings::{FetchSettings, ToolSettings};
use crate::trail;

pub(crate) use crate::tool_names::NAMES;

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

/// What the tools share: the fetch tool's client and policy, the limits on inputs and on the memory, and
/// the injected faults.
#[derive(Debug)]
pub(crate) struct Tools {
    fetcher: Fetcher,
    settings: ToolSettings,
    pub(crate) faults: Faults,
}

impl Tools {
    /// The tools as `fetch` and `tools` configure them.
    pub(crate) fn new(fetch: &FetchSettings, tools: &ToolSettings) -> Result<Tools, String> {
        Ok(Tools { fetcher: Fetcher::new(fetch)?, settings: tools.clone(), faults: Faults::default() })
    }

    /// Runs `call` if `allowed` lets the caller's key use the tool; every decision is audited.
    pub(crate) async fn run(
        &self,
        session: &mut Session,
        call: &ToolCall,
        allowed: &(dyn Fn(&str) -> bool + Sync),
    ) -> ToolOutcome {
        let name = recorded_name(&call.tool);
        let known = NAMES.contains(&call.tool.as_str());
        let permitted = known && allowed(&call.tool);
        authorization(name, permitted, "the key's tools");
        let result = if permitted {
            self.dispatch(session, call).await
        } else if known {
            Err(ToolError::Failed(format!("the tool `{name}` is not available to this key")))
        } else {
            Err(ToolError::Failed(format!("no tool of that name; allowed: {}", NAMES.join(", "))))
        };
        match result {
            Ok(output) => ToolOutcome { tool: name.to_owned(), ok: true, output },
            Err(error) => ToolOutcome { tool: name.to_owned(), ok: false, output: error.to_string() },
        }
    }

    /// The call's input is bounded and taken apart here, before any tool parses it.
    async fn dispatch(&self, session: &mut Session, call: &ToolCall) -> Result<String, ToolError> {
        match arguments::extract(&call.tool, &call.input, self.settings.max_input_bytes)? {
            Arguments::Calculator { expression } => calculator(expression),
            Arguments::Clock => clock(),
            Arguments::Fetch { url } => self.fetcher.get(url).await,
            Arguments::Memory { op, key, value } => {
                memory::memory(&mut session.memory, &self.settings.memory, op, key, value)
            }
            Arguments::Faulty => faulty(&self.faults).await,
        }
    }
}

/// A tool's name as it is recorded (audit events, outcomes): a name the model made up is recorded as
/// `unknown`, since it may be as long as the model's answer.
pub(crate) fn recorded_name(tool: &str) -> &str {
    NAMES.iter().find(|name| **name == tool).copied().unwrap_or("unknown")
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

/// Arithmetic. The expression is the caller's words, so it is not a span field; its length is.
#[hardened(kind = "tool", audit, fields(length = expression.len()))]
fn calculator(expression: &str) -> Result<String, ToolError> {
    crate::calculator::evaluate(expression).map(|value| value.to_string()).map_err(ToolError::InvalidInput)
}

/// The time, in UTC.
#[hardened(kind = "tool", audit)]
fn clock() -> Result<String, ToolError> {
    Ok(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// Fails and lags as the operator sets it (`PUT /v1/admin/faults`), behind a breaker that opens at half
/// its calls failing, so that the breaker can be watched opening and closing, and a concurrency limit
/// (`[concurrency.faulty]`; `limit = "gradient"` makes it follow the latency, as `scripts/adaptive.sh`
/// shows).
#[hardened(
    kind = "tool",
    audit,
    breaker(name = "faulty", failure_rate = 50, window = 20, min_calls = 10, open_for = "5s", half_open_calls = 3),
    concurrency(name = "faulty", limit = 64, wait = "5s"),
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex, PoisonError};

    use tracing::field::{Field, Visit};
    use tracing_subscriber::layer::{Context, SubscriberExt as _};

    use super::*;
    use crate::settings::MemorySettings;

    /// Every span field recorded, as `name=value`.
    #[derive(Debug, Clone, Default)]
    struct SpanFields(Arc<Mutex<Vec<String>>>);

    impl Visit for SpanFields {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            self.0.lock().unwrap_or_else(PoisonError::into_inner).push(format!("{}={value:?}", field.name()));
        }
    }

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for SpanFields {
        fn on_new_span(&self, attributes: &tracing::span::Attributes<'_>, _: &tracing::span::Id, _: Context<'_, S>) {
            attributes.record(&mut self.clone());
        }

        fn on_record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>, _: Context<'_, S>) {
            values.record(&mut self.clone());
        }
    }

    #[tokio::test]
    async fn a_made_up_tool_name_is_refused_and_recorded_as_unknown() {
        let tools = Tools::new(&FetchSettings::default(), &ToolSettings::default()).expect("default settings");
        let sessions = crate::sessions::Sessions::default();
        let session = sessions.get(sessions.open("alice").expect("within the limits")).expect("open");
        let call = ToolCall { id: "c1".into(), tool: "x".repeat(100_000), input: json!({}) };
        let outcome = tools.run(&mut *session.session.lock().await, &call, &|_| true).await;
        assert_eq!(outcome.tool, "unknown");
        assert!(!outcome.ok);
        assert_eq!(outcome.output, "no tool of that name; allowed: calculator, clock, fetch, memory, faulty");
    }

    #[test]
    fn expressions_and_memory_keys_and_values_are_not_span_fields() {
        let fields = SpanFields::default();
        let subscriber = tracing_subscriber::registry().with(fields.clone());
        tracing::subscriber::with_default(subscriber, || {
            assert_eq!(calculator("918273 + 1").ok(), Some("918274".to_owned()));
            let mut store = BTreeMap::new();
            let limits = MemorySettings::default();
            assert!(memory::memory(&mut store, &limits, "set", "plantedkey", Some("plantedvalue")).is_ok());
            assert!(memory::memory(&mut store, &limits, "get", "otherplantedkey", None).is_err());
        });
        let recorded = fields.0.lock().unwrap_or_else(PoisonError::into_inner).join(" ");
        assert!(recorded.contains("op=\"set\"") || recorded.contains("op=set"), "the op is kept: {recorded}");
        assert!(recorded.contains("length=10"), "the expression's length is kept: {recorded}");
        for planted in ["918273", "plantedkey", "plantedvalue"] {
            assert!(!recorded.contains(planted), "{planted} is a span field: {recorded}");
        }
    }
}
