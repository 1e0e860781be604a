//! The embedded scripted model: deterministic, needs nothing, and decides tool calls from the message the
//! way a real model would be asked to.

use serde_json::json;

use super::{Model, ModelAnswer, ModelError, ModelTurn, count_tokens};
use crate::conversation::Message;

/// Reads the last message: a tool's result is summarised; a user's message asks for a tool when it looks
/// like arithmetic (`what is 2 + 3 * 4`), the time, a URL, `remember <key> is <value>`, `recall <key>` or
/// a fault, and is answered directly otherwise.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scripted;

#[async_trait::async_trait]
impl Model for Scripted {
    fn name(&self) -> &'static str {
        "scripted"
    }

    async fn complete(&self, messages: &[Message], _max_tokens: u32) -> Result<ModelAnswer, ModelError> {
        let turn = match messages.last() {
            Some(Message::ToolResult { tool, ok: true, output, .. }) => ModelTurn::Text(format!("{tool}: {output}")),
            Some(Message::ToolResult { tool, ok: false, output, .. }) => {
                ModelTurn::Text(format!("the {tool} tool failed: {output}"))
            }
            Some(Message::User { content }) => decide(content, messages.len()),
            Some(Message::Assistant { .. } | Message::ToolCall { .. }) | None => {
                return Err(ModelError::Malformed("nothing to answer".to_owned()));
            }
        };
        let read: u64 = messages.iter().map(|message| count_tokens(&text_of(message))).sum();
        let written = match &turn {
            ModelTurn::Text(text) => count_tokens(text),
            ModelTurn::ToolCall { input, .. } => count_tokens(&input.to_string()),
        };
        Ok(ModelAnswer { turn, input_tokens: read, output_tokens: written.max(1) })
    }
}

fn text_of(message: &Message) -> String {
    match message {
        Message::User { content } | Message::Assistant { content } => content.clone(),
        Message::ToolCall { input, .. } => input.to_string(),
        Message::ToolResult { output, .. } => output.clone(),
    }
}

fn decide(content: &str, position: usize) -> ModelTurn {
    let lower = content.to_lowercase();
    let call = |tool: &str, input: serde_json::Value| ModelTurn::ToolCall {
        id: format!("call_{position}"),
        tool: tool.to_owned(),
        input,
    };
    if let Some(url) =
        content.split_whitespace().find(|word| word.starts_with("http://") || word.starts_with("https://"))
    {
        return call("fetch", json!({ "url": url }));
    }
    if let Some(rest) = lower.strip_prefix("remember ") {
        let (key, value) = rest.split_once(" is ").or_else(|| rest.split_once('=')).unwrap_or((rest, ""));
        return call("memory", json!({ "op": "set", "key": key.trim(), "value": value.trim() }));
    }
    if let Some(key) = lower.strip_prefix("recall ") {
        return call("memory", json!({ "op": "get", "key": key.trim() }));
    }
    if lower.contains("fault") {
        return call("faulty", json!({}));
    }
    let expression: String =
        content.chars().filter(|c| c.is_ascii_digit() || "+-*/().^ ".contains(*c)).collect::<String>();
    if expression.chars().any(|c| c.is_ascii_digit()) && expression.chars().any(|c| "+-*/^".contains(c)) {
        return call("calculator", json!({ "expression": expression.trim() }));
    }
    if lower.contains("time") || lower.contains("clock") || lower.contains("date") {
        return call("clock", json!({}));
    }
    ModelTurn::Text(format!(
        "You said {} words. Ask me to calculate, tell the time, fetch a URL, remember or recall.",
        count_tokens(content)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(content: &str) -> Vec<Message> {
        vec![Message::User { content: content.to_owned() }]
    }

    fn tool_of(turn: &ModelTurn) -> Option<(&str, &serde_json::Value)> {
        match turn {
            ModelTurn::ToolCall { tool, input, .. } => Some((tool.as_str(), input)),
            ModelTurn::Text(_) => None,
        }
    }

    #[tokio::test]
    async fn messages_choose_their_tools() {
        let cases = [
            ("what is 2 + 3 * 4?", Some(("calculator", json!({ "expression": "2 + 3 * 4" })))),
            ("what time is it", Some(("clock", json!({})))),
            ("fetch http://127.0.0.1:9/x please", Some(("fetch", json!({ "url": "http://127.0.0.1:9/x" })))),
            ("remember colour is blue", Some(("memory", json!({ "op": "set", "key": "colour", "value": "blue" })))),
            ("recall colour", Some(("memory", json!({ "op": "get", "key": "colour" })))),
            ("inject a fault", Some(("faulty", json!({})))),
            ("hello there", None),
        ];
        for (message, expected) in cases {
            let answer = Scripted.complete(&user(message), 100).await.expect("an answer");
            let expected = expected.as_ref().map(|(tool, input)| (*tool, input));
            assert_eq!(tool_of(&answer.turn), expected, "{message}");
            assert!(answer.input_tokens > 0 && answer.output_tokens > 0);
        }
    }

    #[tokio::test]
    async fn a_tool_result_is_summarised() {
        let mut messages = user("what is 1+1");
        messages.push(Message::ToolResult {
            id: "call_1".into(),
            tool: "calculator".into(),
            ok: true,
            output: "2".into(),
        });
        let answer = Scripted.complete(&messages, 100).await.expect("an answer");
        assert_eq!(answer.turn, ModelTurn::Text("calculator: 2".to_owned()));
    }
}
