//! A conversation: its messages, and the part of them the model sees.

use serde::Serialize;

/// One entry of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub(crate) enum Message {
    User { content: String },
    Assistant { content: String },
    ToolCall { id: String, tool: String, input: serde_json::Value },
    ToolResult { id: String, tool: String, ok: bool, output: String },
}

impl Message {
    /// About how many bytes of text the model reads for this message.
    pub(crate) fn len(&self) -> usize {
        match self {
            Message::User { content } | Message::Assistant { content } => content.len(),
            Message::ToolCall { tool, input, .. } => tool.len() + json_bytes(input),
            Message::ToolResult { tool, output, .. } => tool.len() + output.len(),
        }
    }
}

/// The length of `value` as compact JSON, counted as it is serialized rather than written to a string:
/// the token budget's estimate of every model call's context counts each tool call of the context again,
/// and the transcript's bound each message.
pub(crate) fn json_bytes(value: &serde_json::Value) -> usize {
    /// A writer that keeps only the count of bytes written.
    struct Count(usize);

    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    let mut count = Count(0);
    // A `Value` always serializes, and the counter never fails.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// A conversation: the transcript and how many model calls the current message may still take.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Conversation {
    pub(crate) messages: Vec<Message>,
    #[serde(skip)]
    steps_left: u32,
}

/// How many of the latest messages the model sees at most: a context window, so that a long
/// conversation costs what a short one does.
pub(crate) const CONTEXT_MESSAGES: usize = 32;

impl Conversation {
    /// The messages the model sees: the latest ones, from a user's message on, at most
    /// [`CONTEXT_MESSAGES`] (more only when the current message's own turn is longer).
    pub(crate) fn context(&self) -> &[Message] {
        let earliest = self.messages.len().saturating_sub(CONTEXT_MESSAGES);
        let start = self.messages[earliest..]
            .iter()
            .position(|message| matches!(message, Message::User { .. }))
            .map(|offset| earliest + offset)
            .or_else(|| self.messages.iter().rposition(|message| matches!(message, Message::User { .. })))
            .unwrap_or(0);
        &self.messages[start..]
    }

    /// Starts a user's turn, which may take `max_steps` model calls.
    pub(crate) fn start_turn(&mut self, max_steps: u32) {
        self.steps_left = max_steps;
    }

    /// Spends one step of the turn; whether any is left.
    pub(crate) fn spend_step(&mut self) -> bool {
        self.steps_left = self.steps_left.saturating_sub(1);
        self.steps_left > 0
    }

    /// Forgets the oldest messages beyond the latest `max`: the transcript of a long session stays
    /// bounded, and the model's context, the latest [`CONTEXT_MESSAGES`], is unaffected.
    pub(crate) fn keep_latest(&mut self, max: usize) {
        let excess = self.messages.len().saturating_sub(max);
        self.messages.drain(..excess);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_tool_call_counts_the_bytes_of_its_input_as_compact_json() {
        for input in [
            json!({}),
            json!({ "expression": "2 + 3 * 4" }),
            json!({ "op": "set", "key": "colour", "value": "bleu \"clair\" \u{e9}\u{1}\n" }),
            json!([1.5, -2, null, true, { "nested": ["a", "b"] }]),
        ] {
            let call = Message::ToolCall { id: "call_1".into(), tool: "memory".into(), input: input.clone() };
            assert_eq!(call.len(), "memory".len() + input.to_string().len(), "{input}");
        }
    }
}
