//! The agent: a reducer folds actions (a user's message, the model's reply, a tool's result) into the
//! conversation and says what to do next; [`Agent::respond`] runs those effects (model calls, tool calls) until
//! the reducer has an answer.

use hardened::{Audited, hardened};
use serde::Serialize;
use uuid::Uuid;

use crate::conversation::{Conversation, Message};
use crate::model::{self, ModelError, ModelTurn};
use crate::sessions::Session;
use crate::tools::{self, ToolCall, ToolOutcome, Tools};

/// What happened, as the reducer sees it; each action is one audit event.
#[derive(Debug, Clone, Serialize, Audited)]
pub(crate) enum Action {
    /// A user's message; its text is recorded as a keyed hash only.
    #[audited(event = "UserMessage")]
    UserMessage {
        #[audited(session_id)]
        session: Uuid,
        #[audited(redact = "hash")]
        content: String,
    },
    /// The model answered, with text or a tool call.
    #[audited(event = "AgentResponse")]
    ModelReply {
        #[audited(session_id)]
        session: Uuid,
        model: String,
        tool: Option<String>,
        #[audited(skip)]
        turn: ModelTurn,
    },
    /// A tool ran (or was refused).
    ToolResult {
        #[audited(session_id)]
        session: Uuid,
        tool: String,
        ok: bool,
        #[audited(skip)]
        id: String,
        #[audited(skip)]
        output: String,
    },
}

/// What the agent does next.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Effect {
    CallModel,
    CallTool(ToolCall),
    Respond(String),
}

/// Folds one action into the conversation. Pure and synchronous: measured in microseconds, audited
/// through its action.
#[hardened(kind = "reducer", audit = action)]
pub(crate) fn reduce(conversation: &mut Conversation, action: Action, max_steps: u32) -> Effect {
    match action {
        Action::UserMessage { content, .. } => {
            conversation.push(Message::User { content });
            conversation.start_turn(max_steps);
            Effect::CallModel
        }
        Action::ModelReply { turn: ModelTurn::Text(content), .. } => {
            conversation.push(Message::Assistant { content: content.clone() });
            Effect::Respond(content)
        }
        Action::ModelReply { turn: ModelTurn::ToolCall { id, tool, input }, .. } => {
            conversation.push(Message::ToolCall { id: id.clone(), tool: tool.clone(), input: input.clone() });
            Effect::CallTool(ToolCall { id, tool, input })
        }
        Action::ToolResult { id, tool, ok, output, .. } => {
            conversation.push(Message::ToolResult { id, tool, ok, output: output.clone() });
            if conversation.spend_step() {
                Effect::CallModel
            } else {
                // Out of steps: answer with what the last tool said rather than loop.
                let content = format!("I could not finish within the step limit; the last tool said: {output}");
                conversation.push(Message::Assistant { content: content.clone() });
                Effect::Respond(content)
            }
        }
    }
}

/// The answer to one message, and the tools that ran for it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Reply {
    pub(crate) answer: String,
    pub(crate) tools: Vec<ToolOutcome>,
    pub(crate) input_tokens: u64,
    pub(crate) output_tokens: u64,
}

/// What the agent needs to answer: the model, the tools and the limits.
#[derive(Debug)]
pub(crate) struct Agent {
    pub(crate) model: model::Client,
    pub(crate) tools: Tools,
    pub(crate) max_steps: u32,
    pub(crate) max_tokens: u32,
}

impl Agent {
    /// Answers `content` in `session` for the caller whose API key is `key_name`, within that key's
    /// token budget: runs the reducer's effects until it responds. `allowed` says which tools the key may
    /// use.
    ///
    /// The work of the message route (`POST /v1/sessions/{id}/messages`), and its objective: 99.5% of
    /// messages answered, 99% within 10 s (the model and the tools included), over 30 days.
    #[hardened(kind = "route", slo(name = "messages", success = 99.5, latency = "10s", latency_target = 99))]
    pub(crate) async fn respond(
        &self,
        session: &mut Session,
        content: String,
        key_name: &str,
        allowed: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<Reply, ModelError> {
        let id = session.id;
        let mut reply = Reply { answer: String::new(), tools: Vec::new(), input_tokens: 0, output_tokens: 0 };
        let mut effect =
            reduce(&mut session.conversation, Action::UserMessage { session: id, content }, self.max_steps);
        loop {
            effect = match effect {
                Effect::CallModel => {
                    let answer = self.model.complete(key_name, session.conversation.context(), self.max_tokens).await?;
                    reply.input_tokens += answer.input_tokens;
                    reply.output_tokens += answer.output_tokens;
                    let tool = match &answer.turn {
                        ModelTurn::ToolCall { tool, .. } => Some(tools::recorded_name(tool).to_owned()),
                        ModelTurn::Text(_) => None,
                    };
                    let action = Action::ModelReply {
                        session: id,
                        model: self.model.name().to_owned(),
                        tool,
                        turn: answer.turn,
                    };
                    reduce(&mut session.conversation, action, self.max_steps)
                }
                Effect::CallTool(call) => {
                    let outcome = self.tools.run(session, &call, allowed).await;
                    let action = Action::ToolResult {
                        session: id,
                        tool: outcome.tool.clone(),
                        ok: outcome.ok,
                        id: call.id,
                        output: outcome.output.clone(),
                    };
                    reply.tools.push(outcome);
                    reduce(&mut session.conversation, action, self.max_steps)
                }
                Effect::Respond(text) => {
                    reply.answer = text;
                    return Ok(reply);
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::CONTEXT_MESSAGES;

    fn user(n: usize) -> Message {
        Message::User { content: format!("message {n}") }
    }

    #[test]
    fn the_context_is_the_latest_messages_from_a_users_message_on() {
        let mut conversation = Conversation::default();
        for n in 0..40 {
            conversation.push(user(n));
            conversation.push(Message::Assistant { content: format!("answer {n}") });
        }
        let context = conversation.context();
        assert_eq!(context.len(), CONTEXT_MESSAGES);
        assert_eq!(context[0], user(24), "a window starts at a user's message");

        let mut long_turn = Conversation::default();
        long_turn.push(user(0));
        for n in 0..40 {
            let id = format!("call_{n}");
            long_turn.push(Message::ToolCall { id: id.clone(), tool: "clock".into(), input: serde_json::json!({}) });
            long_turn.push(Message::ToolResult { id, tool: "clock".into(), ok: true, output: "now".into() });
        }
        assert_eq!(long_turn.context().len(), long_turn.messages().len(), "the current turn is never cut");
    }

    #[test]
    fn a_capped_transcript_keeps_the_latest_messages_and_the_same_context() {
        let mut conversation = Conversation::default();
        for n in 0..600 {
            conversation.push(user(n));
            conversation.push(Message::Assistant { content: format!("answer {n}") });
        }
        let context = conversation.context().to_vec();
        conversation.keep_latest(1_000);
        assert_eq!(conversation.messages().len(), 1_000);
        assert_eq!(conversation.messages()[0], user(100), "the oldest went first");
        assert_eq!(conversation.context(), context.as_slice());
        conversation.keep_latest(1_000);
        assert_eq!(conversation.messages().len(), 1_000, "within the cap, nothing goes");
    }

    #[test]
    fn the_reducer_moves_from_message_to_model_to_tool_to_answer() {
        let session = Uuid::now_v7();
        let mut conversation = Conversation::default();
        let effect = reduce(&mut conversation, Action::UserMessage { session, content: "1+1".into() }, 2);
        assert_eq!(effect, Effect::CallModel);
        let call = ModelTurn::ToolCall {
            id: "c1".into(),
            tool: "calculator".into(),
            input: serde_json::json!({"expression": "1+1"}),
        };
        let effect = reduce(
            &mut conversation,
            Action::ModelReply { session, model: "m".into(), tool: Some("calculator".into()), turn: call },
            2,
        );
        assert!(matches!(effect, Effect::CallTool(ToolCall { ref tool, .. }) if tool == "calculator"));
        let result =
            Action::ToolResult { session, tool: "calculator".into(), ok: true, id: "c1".into(), output: "2".into() };
        assert_eq!(reduce(&mut conversation, result.clone(), 2), Effect::CallModel);
        let answer = Action::ModelReply { session, model: "m".into(), tool: None, turn: ModelTurn::Text("2".into()) };
        assert_eq!(reduce(&mut conversation, answer, 2), Effect::Respond("2".into()));
        assert_eq!(conversation.messages().len(), 4);

        // Out of steps: the reducer answers instead of calling the model again.
        let effect = reduce(&mut conversation, Action::UserMessage { session, content: "again".into() }, 1);
        assert_eq!(effect, Effect::CallModel);
        let Effect::Respond(text) = reduce(&mut conversation, result, 1) else {
            panic!("the step limit ends the turn")
        };
        assert!(text.contains("step limit"));
    }
}
