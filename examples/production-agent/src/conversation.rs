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

    /// What the message weighs against the transcript's bound (`max_transcript_bytes`): the bytes of its
    /// text, its tool's name and input, and its call's id.
    pub(crate) fn transcript_bytes(&self) -> usize {
        match self {
            Message::User { content } | Message::Assistant { content } => content.len(),
            Message::ToolCall { id, tool, input } => id.len() + tool.len() + json_bytes(input),
            Message::ToolResult { id, tool, output, .. } => id.len() + tool.len() + output.len(),
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

/// A conversation: the transcript, what it weighs, and how many model calls the current message may
/// still take.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Conversation {
    messages: Vec<Message>,
    /// The [`Message::transcript_bytes`] of the messages, kept as they come and go, so that bounding the
    /// transcript looks at the messages that go, not at all of them on every message.
    #[serde(skip)]
    bytes: usize,
    #[serde(skip)]
    steps_left: u32,
}

impl FromIterator<Message> for Conversation {
    fn from_iter<I: IntoIterator<Item = Message>>(messages: I) -> Self {
        let mut conversation = Conversation::default();
        for message in messages {
            conversation.push(message);
        }
        conversation
    }
}

/// How many of the latest messages the model sees at most: a context window, so that a long
/// conversation costs what a short one does.
pub(crate) const CONTEXT_MESSAGES: usize = 32;

impl Conversation {
    /// The transcript, oldest first.
    pub(crate) fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// What the transcript weighs: the [`Message::transcript_bytes`] of its messages.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Adds `message` at the end of the transcript.
    pub(crate) fn push(&mut self, message: Message) {
        self.bytes += message.transcript_bytes();
        self.messages.push(message);
    }

    /// Forgets the `count` oldest messages.
    pub(crate) fn forget_oldest(&mut self, count: usize) {
        let count = count.min(self.messages.len());
        for message in self.messages.drain(..count) {
            self.bytes -= message.transcript_bytes();
        }
    }

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
        self.forget_oldest(self.messages.len().saturating_sub(max));
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

    #[test]
    fn the_transcript_weighs_what_its_messages_weigh_as_they_come_and_go() {
        let weighed = |conversation: &Conversation| conversation.messages().iter().map(Message::transcript_bytes).sum();
        let input = json!({ "expression": "1 + 2" });
        let call = Message::ToolCall { id: "c".into(), tool: "calculator".into(), input: input.clone() };
        assert_eq!(call.transcript_bytes(), 1 + "calculator".len() + input.to_string().len());
        let mut conversation: Conversation = [
            Message::User { content: "add".into() },
            call,
            Message::ToolResult { id: "c".into(), tool: "calculator".into(), ok: true, output: "3".into() },
            Message::Assistant { content: "it is 3".into() },
        ]
        .into_iter()
        .collect();
        assert_eq!(conversation.bytes(), weighed(&conversation));
        conversation.forget_oldest(2);
        assert_eq!((conversation.messages().len(), conversation.bytes()), (2, weighed(&conversation)));
        conversation.keep_latest(1);
        assert_eq!(conversation.bytes(), "it is 3".len());
        conversation.forget_oldest(5);
        assert_eq!((conversation.messages().len(), conversation.bytes()), (0, 0));
    }
}
