//! Model backends behind one trait, and the guarded call every model call goes through.

mod anthropic;
mod openai;
mod scripted;

use std::sync::Arc;

use hardened::hardened;
use prometheus::IntCounter;
use serde::Serialize;
use serde_json::Value;

use crate::conversation::Message;
use crate::settings::{Backend, ModelSettings};
use crate::tools::redact;

pub(crate) use self::anthropic::Anthropic;
pub(crate) use self::openai::OpenAiCompatible;
pub(crate) use self::scripted::Scripted;

/// What the model said: an answer, or a tool to call.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ModelTurn {
    Text(String),
    ToolCall { id: String, tool: String, input: serde_json::Value },
}

/// One answer and what it cost.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ModelAnswer {
    pub(crate) turn: ModelTurn,
    pub(crate) input_tokens: u64,
    pub(crate) output_tokens: u64,
}

impl ModelAnswer {
    /// The tokens the provider counts for this answer: what it read and what it wrote.
    #[cfg_attr(hardened_disabled, expect(dead_code, reason = "only the token budget of `spend_tokens` asks"))]
    pub(crate) fn tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }
}

/// The tokens a call of the model may use, before it is made: its context at about four bytes a token
/// (rounded up), and the most it may write. Settled with what the provider reports once it answers.
#[cfg_attr(hardened_disabled, expect(dead_code, reason = "only the token budget of `spend_tokens` asks"))]
pub(crate) fn estimate_tokens(messages: &[Message], max_tokens: u32) -> u64 {
    let bytes: usize = messages.iter().map(Message::len).sum();
    u64::try_from(bytes.div_ceil(4)).unwrap_or(u64::MAX).saturating_add(u64::from(max_tokens))
}

/// Why a model call failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ModelError {
    /// The network failed: the caller is told that much; the cause, which names the provider's address,
    /// is logged.
    #[error("the model could not be reached")]
    Unreachable(String),
    /// The provider's error: the caller is told the status only; an excerpt of the body is logged.
    #[error("the model answered {status}")]
    Status { status: reqwest::StatusCode },
    #[error("the model's answer could not be read: {0}")]
    Malformed(String),
    #[error(transparent)]
    Refused(#[from] hardened::Rejected),
}

impl ModelError {
    /// Whether another attempt may succeed: the network, rate limits and the provider's own failures.
    #[cfg_attr(hardened_disabled, expect(dead_code, reason = "only the retry of `call_model` asks"))]
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            ModelError::Unreachable(_) => true,
            ModelError::Status { status } => {
                *status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
            }
            ModelError::Malformed(_) | ModelError::Refused(_) => false,
        }
    }
}

/// A model backend.
#[async_trait::async_trait]
pub(crate) trait Model: Send + Sync + std::fmt::Debug {
    /// The model's identifier, for the metrics and the audit trail.
    fn name(&self) -> &str;

    /// The next turn of the conversation.
    async fn complete(&self, messages: &[Message], max_tokens: u32) -> Result<ModelAnswer, ModelError>;
}

/// The backend chosen by the configuration, with its token counters.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    model: Arc<dyn Model>,
    input_tokens: IntCounter,
    output_tokens: IntCounter,
}

impl Client {
    /// The backend `settings` and the environment choose.
    pub(crate) fn from_settings(settings: &ModelSettings, http: &reqwest::Client) -> Result<Client, String> {
        let anthropic_key = std::env::var("ANTHROPIC_API_KEY").ok().filter(|key| !key.is_empty());
        let backend = match settings.backend {
            Backend::Auto if anthropic_key.is_some() => Backend::Anthropic,
            Backend::Auto if settings.base_url.is_some() => Backend::Openai,
            Backend::Auto => Backend::Scripted,
            chosen => chosen,
        };
        let model: Arc<dyn Model> = match backend {
            Backend::Anthropic => {
                let key = anthropic_key.ok_or("model.backend = \"anthropic\" needs ANTHROPIC_API_KEY")?;
                Arc::new(Anthropic::new(http.clone(), key, settings.name.clone()))
            }
            Backend::Openai => {
                let base_url = settings
                    .base_url
                    .clone()
                    .ok_or("model.backend = \"openai\" needs model.base_url or OPENAI_BASE_URL")?;
                let key = std::env::var("OPENAI_API_KEY").ok().filter(|key| !key.is_empty());
                Arc::new(OpenAiCompatible::new(http.clone(), &base_url, key, settings.name.clone()))
            }
            Backend::Scripted | Backend::Auto => Arc::new(Scripted),
        };
        Ok(Client::new(model))
    }

    /// A client of `model`, counting its tokens in `hardened_llm_tokens_total{model,type}`.
    pub(crate) fn new(model: Arc<dyn Model>) -> Client {
        let tokens = token_counter();
        let input_tokens = tokens.with_label_values(&[model.name(), "input"]);
        let output_tokens = tokens.with_label_values(&[model.name(), "output"]);
        Client { model, input_tokens, output_tokens }
    }

    /// The model's identifier.
    pub(crate) fn name(&self) -> &str {
        self.model.name()
    }

    /// The next turn for the caller whose API key is `key_name`, within that key's token budget
    /// ([`spend_tokens`]) and through the guards of [`call_model`], with its tokens counted.
    pub(crate) async fn complete(
        &self,
        key_name: &str,
        messages: &[Message],
        max_tokens: u32,
    ) -> Result<ModelAnswer, ModelError> {
        let answer = spend_tokens(key_name, self.model.as_ref(), messages, max_tokens).await?;
        self.input_tokens.inc_by(answer.input_tokens);
        self.output_tokens.inc_by(answer.output_tokens);
        Ok(answer)
    }
}

/// Every model call, within the token budget of the API key it is made for: tokens per minute, one bucket
/// per key (at most `max_keys`), taken by estimate before the call and settled with the tokens the provider
/// reported. A caller over its budget is answered 429 with `Retry-After` from its bucket; one whose single
/// request is larger than the whole budget, 413.
#[hardened(
    kind = "llm",
    rate(
        name = "tenant_tokens",
        per_minute = 100_000,
        key = key_name,
        cost = estimate_tokens(messages, max_tokens),
        settle = ModelAnswer::tokens
    )
)]
#[cfg_attr(hardened_disabled, expect(unused_variables, reason = "only the token budget's key reads it"))]
async fn spend_tokens(
    key_name: &str,
    model: &dyn Model,
    messages: &[Message],
    max_tokens: u32,
) -> Result<ModelAnswer, ModelError> {
    call_model(model, messages, max_tokens).await
}

/// Every model call: a breaker shared under the name `llm`, the provider's rate limit, the provider's
/// limit of concurrent requests (calls over it queue for their turn), a timeout, and retries of transient
/// failures within a retry budget. Its objective: 99% of calls answered (a refusal by a guard counts
/// against it), 95% within 5 s, over 30 days.
#[hardened(
    kind = "llm",
    fields(model = model.name()),
    slo(name = "model", success = 99, latency = "5s", latency_target = 95),
    breaker = "llm",
    rate(name = "llm", per_second = 50, burst = 100),
    concurrency(name = "llm", limit = 64, wait = "10s"),
    timeout = "30s",
    retry(attempts = 2, backoff = "200ms", max_backoff = "2s", when = ModelError::is_transient)
)]
async fn call_model(model: &dyn Model, messages: &[Message], max_tokens: u32) -> Result<ModelAnswer, ModelError> {
    model.complete(messages, max_tokens).await
}

/// The most bytes of a successful answer read; a larger one is refused as malformed.
const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;
/// The most bytes of an error's body read: the provider's error bodies are short, and an endpoint that
/// sends a long one gets no more of this process's memory or time.
const MAX_ERROR_BODY_BYTES: usize = 4 * 1024;
/// The most characters of an error's body logged.
const ERROR_EXCERPT_CHARS: usize = 512;

/// Sends `request` and reads the body of a successful response, or the error its status says. Neither
/// body is read past its bound; an error's body is logged as a short excerpt and not returned.
async fn exchange(request: reqwest::RequestBuilder) -> Result<Value, ModelError> {
    let unreachable = |error: reqwest::Error| {
        let cause = redact::reqwest_error(error);
        tracing::warn!(%cause, "the model could not be reached");
        ModelError::Unreachable(cause)
    };
    let mut response = request.send().await.map_err(unreachable)?;
    let status = response.status();
    if !status.is_success() {
        let (body, complete) = read_at_most(&mut response, MAX_ERROR_BODY_BYTES).await.unwrap_or_default();
        let excerpt: String = String::from_utf8_lossy(&body).chars().take(ERROR_EXCERPT_CHARS).collect();
        tracing::warn!(
            status = status.as_u16(),
            body = %redact::urls(&excerpt),
            truncated = !complete || excerpt.len() < body.len(),
            "the model answered an error"
        );
        return Err(ModelError::Status { status });
    }
    let (body, complete) = read_at_most(&mut response, MAX_ANSWER_BYTES).await.map_err(unreachable)?;
    if !complete {
        return Err(ModelError::Malformed(format!("the answer is over {MAX_ANSWER_BYTES} bytes")));
    }
    serde_json::from_slice(&body).map_err(|error| ModelError::Malformed(error.to_string()))
}

/// Up to `limit` bytes of `response`'s body, and whether that was all of it; the rest is never read.
async fn read_at_most(response: &mut reqwest::Response, limit: usize) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, false));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, true))
}

/// `hardened_llm_tokens_total`, registered once in hardened's registry so `/metrics` serves it.
fn token_counter() -> prometheus::IntCounterVec {
    static COUNTER: std::sync::OnceLock<prometheus::IntCounterVec> = std::sync::OnceLock::new();
    COUNTER
        .get_or_init(|| {
            let counter = prometheus::IntCounterVec::new(
                prometheus::Opts::new(
                    "hardened_llm_tokens_total",
                    "Tokens the model read and wrote, by model and type.",
                ),
                &["model", "type"],
            )
            .expect("a valid metric definition");
            // Registered once per process, so it cannot collide.
            let _ = hardened::metrics::registry().register(Box::new(counter.clone()));
            counter
        })
        .clone()
}

/// Tokens as a model without a tokenizer counts them: words.
pub(crate) fn count_tokens(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}
