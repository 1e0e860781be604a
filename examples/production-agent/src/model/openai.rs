//! Any OpenAI-compatible chat-completions endpoint (`POST {base_url}/chat/completions`), such as a local
//! inference server, with the tools offered as functions.

use serde_json::{Value, json};

use super::{Model, ModelAnswer, ModelError, ModelTurn};
use crate::conversation::Message;
use crate::settings::Secret;
use crate::tools;

const DEFAULT_MODEL: &str = "gpt-4o-mini";

/// A model behind an OpenAI-compatible endpoint. Its `Debug` shows the model and the URL without
/// credentials, and the key as `[redacted]`.
#[derive(Clone)]
pub(crate) struct OpenAiCompatible {
    http: reqwest::Client,
    url: String,
    key: Option<Secret>,
    model: String,
}

impl std::fmt::Debug for OpenAiCompatible {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiCompatible")
            .field("model", &self.model)
            .field("url", &tools::redact::urls(&self.url))
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl OpenAiCompatible {
    pub(crate) fn new(http: reqwest::Client, base_url: &str, key: Option<String>, model: Option<String>) -> Self {
        let url = format!("{}/chat/completions", base_url.trim_end_matches('/'));
        let key = key.map(Secret::new);
        OpenAiCompatible { http, url, key, model: model.unwrap_or_else(|| DEFAULT_MODEL.to_owned()) }
    }
}

/// The conversation as chat completions take it: tool calls are `tool_calls` of the assistant, their
/// results messages of the role `tool`.
pub(super) fn request_body(model: &str, messages: &[Message], max_tokens: u32) -> Value {
    let messages: Vec<Value> = messages
        .iter()
        .map(|message| match message {
            Message::User { content } => json!({ "role": "user", "content": content }),
            Message::Assistant { content } => json!({ "role": "assistant", "content": content }),
            Message::ToolCall { id, tool, input } => json!({
                "role": "assistant",
                "content": null,
                "tool_calls": [{ "id": id, "type": "function", "function": { "name": tool, "arguments": input.to_string() } }],
            }),
            Message::ToolResult { id, output, .. } => json!({ "role": "tool", "tool_call_id": id, "content": output }),
        })
        .collect();
    let tools: Vec<Value> = tools::SPECS
        .iter()
        .map(|spec| {
            json!({ "type": "function", "function": { "name": spec.name, "description": spec.description, "parameters": (spec.schema)() } })
        })
        .collect();
    json!({ "model": model, "max_tokens": max_tokens, "messages": messages, "tools": tools })
}

/// The first tool call of the first choice, else its content.
pub(super) fn read_answer(body: &Value) -> Result<ModelAnswer, ModelError> {
    let message = &body["choices"][0]["message"];
    if message.is_null() {
        return Err(ModelError::Malformed("no `choices[0].message`".to_owned()));
    }
    let turn = match message["tool_calls"].as_array().and_then(|calls| calls.first()) {
        Some(call) => {
            let arguments = call["function"]["arguments"].as_str().unwrap_or("{}");
            ModelTurn::ToolCall {
                id: call["id"].as_str().unwrap_or_default().to_owned(),
                tool: call["function"]["name"]
                    .as_str()
                    .ok_or_else(|| ModelError::Malformed("a tool call without a name".to_owned()))?
                    .to_owned(),
                input: serde_json::from_str(arguments)
                    .map_err(|error| ModelError::Malformed(format!("tool arguments are not JSON: {error}")))?,
            }
        }
        None => ModelTurn::Text(message["content"].as_str().unwrap_or_default().to_owned()),
    };
    Ok(ModelAnswer {
        turn,
        input_tokens: body["usage"]["prompt_tokens"].as_u64().unwrap_or(0),
        output_tokens: body["usage"]["completion_tokens"].as_u64().unwrap_or(0),
    })
}

#[async_trait::async_trait]
impl Model for OpenAiCompatible {
    fn name(&self) -> &str {
        &self.model
    }

    async fn complete(&self, messages: &[Message], max_tokens: u32) -> Result<ModelAnswer, ModelError> {
        let mut request = self.http.post(&self.url).json(&request_body(&self.model, messages, max_tokens));
        if let Some(key) = &self.key {
            request = request.bearer_auth(key.expose());
        }
        super::exchange(request).await.and_then(|body| read_answer(&body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_key_and_no_credentials_of_the_url() {
        let model = OpenAiCompatible::new(
            reqwest::Client::new(),
            "https://user:pw-planted@llm.example/v1?api-key=q-planted",
            Some("sk-planted".to_owned()),
            None,
        );
        let printed = format!("{model:?}");
        assert!(!printed.contains("planted"), "{printed}");
        assert!(printed.contains("llm.example/v1") && printed.contains("[redacted]"), "{printed}");
    }

    #[test]
    fn tool_calls_carry_their_arguments_as_text_and_results_are_tool_messages() {
        let messages = [
            Message::User { content: "what is 1+1".into() },
            Message::ToolCall { id: "call_1".into(), tool: "calculator".into(), input: json!({ "expression": "1+1" }) },
            Message::ToolResult { id: "call_1".into(), tool: "calculator".into(), ok: true, output: "2".into() },
        ];
        let body = request_body("local", &messages, 64);
        assert_eq!(body["messages"][1]["tool_calls"][0]["function"]["arguments"], r#"{"expression":"1+1"}"#);
        assert_eq!(body["messages"][2]["role"], "tool");
        assert_eq!(body["tools"][0]["type"], "function");
    }

    #[test]
    fn a_tool_call_is_read_with_its_arguments_parsed() {
        let body = json!({
            "choices": [{ "message": { "role": "assistant", "content": null, "tool_calls": [
                { "id": "call_9", "type": "function", "function": { "name": "clock", "arguments": "{}" } }
            ] } }],
            "usage": { "prompt_tokens": 20, "completion_tokens": 5 },
        });
        let answer = read_answer(&body).expect("a valid answer");
        assert_eq!(answer.turn, ModelTurn::ToolCall { id: "call_9".into(), tool: "clock".into(), input: json!({}) });
        assert_eq!((answer.input_tokens, answer.output_tokens), (20, 5));
        let bad = json!({ "choices": [{ "message": { "tool_calls": [{ "function": { "name": "clock", "arguments": "{" } }] } }] });
        assert!(matches!(read_answer(&bad), Err(ModelError::Malformed(_))));
    }
}
