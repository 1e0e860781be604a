//! The Anthropic Messages API (`POST /v1/messages`), with the tools offered as tool definitions.

use serde_json::{Value, json};

use super::{Model, ModelAnswer, ModelError, ModelTurn};
use crate::conversation::Message;
use crate::settings::Secret;
use crate::tools;

const DEFAULT_MODEL: &str = "claude-sonnet-4-5";
const API_URL: &str = "https://api.anthropic.com/v1/messages";
const API_VERSION: &str = "2023-06-01";

/// A model of the Anthropic API. Its `Debug` shows the model and the URL without credentials, and the key
/// as `[redacted]`.
#[derive(Clone)]
pub(crate) struct Anthropic {
    http: reqwest::Client,
    key: Secret,
    model: String,
    url: String,
}

impl std::fmt::Debug for Anthropic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Anthropic")
            .field("model", &self.model)
            .field("url", &tools::redact::urls(&self.url))
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Anthropic {
    pub(crate) fn new(http: reqwest::Client, key: String, model: Option<String>) -> Anthropic {
        let url = std::env::var("ANTHROPIC_BASE_URL")
            .map_or_else(|_| API_URL.to_owned(), |base| format!("{}/v1/messages", base.trim_end_matches('/')));
        Anthropic { http, key: Secret::new(key), model: model.unwrap_or_else(|| DEFAULT_MODEL.to_owned()), url }
    }
}

/// The conversation as the Messages API takes it: tool calls are `tool_use` blocks of the assistant,
/// their results `tool_result` blocks of the user.
pub(super) fn request_body(model: &str, messages: &[Message], max_tokens: u32) -> Value {
    let messages: Vec<Value> = messages
        .iter()
        .map(|message| match message {
            Message::User { content } => json!({ "role": "user", "content": content }),
            Message::Assistant { content } => json!({ "role": "assistant", "content": content }),
            Message::ToolCall { id, tool, input } => json!({
                "role": "assistant",
                "content": [{ "type": "tool_use", "id": id, "name": tool, "input": input }],
            }),
            Message::ToolResult { id, ok, output, .. } => json!({
                "role": "user",
                "content": [{ "type": "tool_result", "tool_use_id": id, "content": output, "is_error": !ok }],
            }),
        })
        .collect();
    let tools: Vec<Value> = tools::SPECS
        .iter()
        .map(|spec| json!({ "name": spec.name, "description": spec.description, "input_schema": (spec.schema)() }))
        .collect();
    json!({ "model": model, "max_tokens": max_tokens, "messages": messages, "tools": tools })
}

/// The first `tool_use` block, else the text blocks joined.
pub(super) fn read_answer(body: &Value) -> Result<ModelAnswer, ModelError> {
    let blocks = body["content"].as_array().ok_or_else(|| ModelError::Malformed("no `content` array".to_owned()))?;
    let tool_use = blocks.iter().find(|block| block["type"] == "tool_use");
    let turn = match tool_use {
        Some(block) => ModelTurn::ToolCall {
            id: block["id"].as_str().unwrap_or_default().to_owned(),
            tool: block["name"]
                .as_str()
                .ok_or_else(|| ModelError::Malformed("a tool_use without a name".to_owned()))?
                .to_owned(),
            input: block["input"].clone(),
        },
        None => ModelTurn::Text(blocks.iter().filter_map(|block| block["text"].as_str()).collect::<Vec<_>>().join("")),
    };
    Ok(ModelAnswer {
        turn,
        input_tokens: body["usage"]["input_tokens"].as_u64().unwrap_or(0),
        output_tokens: body["usage"]["output_tokens"].as_u64().unwrap_or(0),
    })
}

#[async_trait::async_trait]
impl Model for Anthropic {
    fn name(&self) -> &str {
        &self.model
    }

    async fn complete(&self, messages: &[Message], max_tokens: u32) -> Result<ModelAnswer, ModelError> {
        let request = self
            .http
            .post(&self.url)
            .header("x-api-key", self.key.expose())
            .header("anthropic-version", API_VERSION)
            .json(&request_body(&self.model, messages, max_tokens));
        super::exchange(request).await.and_then(|body| read_answer(&body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_key() {
        let model = Anthropic::new(reqwest::Client::new(), "sk-ant-planted".to_owned(), None);
        let printed = format!("{model:?}");
        assert!(!printed.contains("sk-ant-planted") && printed.contains("[redacted]"), "{printed}");
    }

    #[test]
    fn tool_calls_and_results_become_content_blocks() {
        let messages = [
            Message::User { content: "what is 1+1".into() },
            Message::ToolCall {
                id: "toolu_1".into(),
                tool: "calculator".into(),
                input: json!({ "expression": "1+1" }),
            },
            Message::ToolResult { id: "toolu_1".into(), tool: "calculator".into(), ok: true, output: "2".into() },
        ];
        let body = request_body("claude", &messages, 100);
        assert_eq!(body["messages"][1]["content"][0]["type"], "tool_use");
        assert_eq!(body["messages"][2]["content"][0]["tool_use_id"], "toolu_1");
        assert_eq!(body["messages"][2]["role"], "user");
        assert!(body["tools"].as_array().is_some_and(|tools| tools.len() == tools::SPECS.len()));
    }

    #[test]
    fn a_tool_use_block_is_a_tool_call_and_usage_is_counted() {
        let body = json!({
            "content": [{ "type": "text", "text": "Let me compute." },
                        { "type": "tool_use", "id": "toolu_2", "name": "calculator", "input": { "expression": "2*3" } }],
            "usage": { "input_tokens": 31, "output_tokens": 12 },
        });
        let answer = read_answer(&body).expect("a valid answer");
        assert_eq!(
            answer.turn,
            ModelTurn::ToolCall {
                id: "toolu_2".into(),
                tool: "calculator".into(),
                input: json!({ "expression": "2*3" })
            }
        );
        assert_eq!((answer.input_tokens, answer.output_tokens), (31, 12));
        let text = read_answer(&json!({ "content": [{ "type": "text", "text": "6" }] })).expect("a valid answer");
        assert_eq!(text.turn, ModelTurn::Text("6".into()));
        assert!(read_answer(&json!({ "error": "overloaded" })).is_err());
    }
}
