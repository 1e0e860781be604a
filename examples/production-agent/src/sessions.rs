//! Sessions: a conversation and a memory per session, owned by the key that opened it, held in memory
//! until they have been idle for the configured time. Memory is bounded: sessions per key and in total,
//! and the bytes and messages of each transcript. `agent_sessions_active` is how many are open.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus::IntGauge;
use serde::Serialize;
use uuid::Uuid;

use crate::conversation::Conversation;
use crate::settings::SessionSettings;

/// One session.
#[derive(Debug, Serialize)]
pub(crate) struct Session {
    pub(crate) id: Uuid,
    /// The name of the key that opened it; only that key may use it.
    pub(crate) owner: String,
    pub(crate) created_at: DateTime<Utc>,
    /// When a message was last handled (or the session opened): what idleness is measured from.
    pub(crate) last_active: DateTime<Utc>,
    pub(crate) conversation: Conversation,
    /// What the memory tool keeps.
    #[serde(skip)]
    pub(crate) memory: BTreeMap<String, String>,
}

/// An open session: its owner, readable without waiting for the session's lock, so that a request is
/// authorized before it waits or reads its body.
#[derive(Debug)]
pub(crate) struct OpenSession {
    pub(crate) owner: String,
    pub(crate) session: tokio::sync::Mutex<Session>,
}

/// A session that was ended for being idle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ended {
    pub(crate) id: Uuid,
    pub(crate) owner: String,
}

/// How much the sessions may hold: `[sessions]` of `agent.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SessionLimits {
    pub(crate) per_key: usize,
    pub(crate) total: usize,
    pub(crate) message_bytes: usize,
    pub(crate) transcript_bytes: usize,
    pub(crate) transcript_messages: usize,
}

impl SessionLimits {
    pub(crate) fn from_settings(settings: &SessionSettings) -> SessionLimits {
        SessionLimits {
            per_key: settings.max_per_key,
            total: settings.max_total,
            message_bytes: settings.max_message_bytes,
            transcript_bytes: settings.max_transcript_bytes,
            transcript_messages: settings.max_messages,
        }
    }
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits::from_settings(&SessionSettings::default())
    }
}

/// Why a session was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SessionLimit {
    #[error(
        "this key holds {0} sessions, the most one key may; close one (DELETE /v1/sessions/{{id}}) or let one idle out"
    )]
    PerKey(usize),
    #[error("the service holds {0} sessions, the most it may; retry later")]
    Total(usize),
}

impl SessionLimit {
    /// The limit's name in audit events.
    pub(crate) fn name(self) -> &'static str {
        match self {
            SessionLimit::PerKey(_) => "per_key",
            SessionLimit::Total(_) => "total",
        }
    }
}

/// Every open session. A session's messages are handled one at a time, under its own lock; the map's lock
/// is held only to find, add or end one.
#[derive(Debug)]
pub(crate) struct Sessions {
    limits: SessionLimits,
    open: RwLock<Open>,
    /// How many sessions are open, set under the map's lock at each change, so it is always the map's size.
    active: IntGauge,
}

impl Default for Sessions {
    /// Sessions with the default limits and a gauge of their own, in no registry.
    fn default() -> Self {
        Sessions::with_gauge(SessionLimits::default(), detached_gauge())
    }
}

/// `agent_sessions_active`, registered once in hardened's registry so `/metrics` serves it from the start.
fn active_sessions_gauge() -> IntGauge {
    static GAUGE: std::sync::OnceLock<IntGauge> = std::sync::OnceLock::new();
    GAUGE
        .get_or_init(|| {
            let gauge = detached_gauge();
            // Registered once per process, so it cannot collide.
            let _ = hardened::metrics::registry().register(Box::new(gauge.clone()));
            gauge
        })
        .clone()
}

fn detached_gauge() -> IntGauge {
    IntGauge::new("agent_sessions_active", "Agent sessions open: opened and not yet closed or ended for being idle.")
        .expect("a valid metric definition")
}

#[derive(Debug, Default)]
struct Open {
    by_id: HashMap<Uuid, Arc<OpenSession>>,
    /// How many sessions each owner holds.
    per_owner: HashMap<String, usize>,
}

impl Open {
    /// Counts one session fewer for `owner`.
    fn release(&mut self, owner: &str) {
        if let Some(held) = self.per_owner.get_mut(owner) {
            *held -= 1;
            if *held == 0 {
                self.per_owner.remove(owner);
            }
        }
    }
}

impl Sessions {
    /// Sessions within `limits`, counted in `agent_sessions_active` of hardened's registry.
    pub(crate) fn new(limits: SessionLimits) -> Sessions {
        Sessions::with_gauge(limits, active_sessions_gauge())
    }

    fn with_gauge(limits: SessionLimits, active: IntGauge) -> Sessions {
        active.set(0);
        Sessions { limits, open: RwLock::default(), active }
    }

    /// Sets the gauge to the number of open sessions; called with the map's write lock held.
    fn count(&self, open: &Open) {
        self.active.set(i64::try_from(open.by_id.len()).unwrap_or(i64::MAX));
    }

    pub(crate) fn limits(&self) -> &SessionLimits {
        &self.limits
    }

    /// Opens a session for `owner`, unless it holds its most sessions or the service holds its most.
    pub(crate) fn open(&self, owner: &str) -> Result<Uuid, SessionLimit> {
        let mut open = self.open.write().unwrap_or_else(PoisonError::into_inner);
        if open.per_owner.get(owner).is_some_and(|held| *held >= self.limits.per_key) {
            return Err(SessionLimit::PerKey(self.limits.per_key));
        }
        if open.by_id.len() >= self.limits.total {
            return Err(SessionLimit::Total(self.limits.total));
        }
        let id = Uuid::now_v7();
        let now = Utc::now();
        let session = Session {
            id,
            owner: owner.to_owned(),
            created_at: now,
            last_active: now,
            conversation: Conversation::default(),
            memory: BTreeMap::new(),
        };
        let entry = OpenSession { owner: owner.to_owned(), session: tokio::sync::Mutex::new(session) };
        open.by_id.insert(id, Arc::new(entry));
        *open.per_owner.entry(owner.to_owned()).or_default() += 1;
        self.count(&open);
        Ok(id)
    }

    /// The session `id`, if it is open.
    pub(crate) fn get(&self, id: Uuid) -> Option<Arc<OpenSession>> {
        self.open.read().unwrap_or_else(PoisonError::into_inner).by_id.get(&id).cloned()
    }

    /// Ends the session `id` at its owner's request: it is forgotten at once (a message it is handling
    /// still finishes), and its place is free.
    pub(crate) fn close(&self, id: Uuid) -> Option<Ended> {
        let mut open = self.open.write().unwrap_or_else(PoisonError::into_inner);
        let closed = open.by_id.remove(&id)?;
        let ended = Ended { id, owner: closed.owner.clone() };
        open.release(&ended.owner);
        self.count(&open);
        Some(ended)
    }

    /// Ends the sessions last active more than `idle` before `now`, and returns them. A session handling
    /// a message (locked) is in use, whatever its time says, and stays.
    pub(crate) fn end_idle(&self, now: DateTime<Utc>, idle: Duration) -> Vec<Ended> {
        let idle = chrono::TimeDelta::from_std(idle).unwrap_or(chrono::TimeDelta::MAX);
        let mut ended = Vec::new();
        let mut open = self.open.write().unwrap_or_else(PoisonError::into_inner);
        open.by_id.retain(|_, entry| {
            let Ok(session) = entry.session.try_lock() else { return true };
            let keep = now.signed_duration_since(session.last_active) <= idle;
            if !keep {
                ended.push(Ended { id: session.id, owner: session.owner.clone() });
            }
            keep
        });
        for gone in &ended {
            open.release(&gone.owner);
        }
        self.count(&open);
        ended
    }

    /// Forgets the oldest messages of `conversation` beyond the transcript's limits: its latest
    /// `max_messages`, within `max_transcript_bytes`. The latest message always stays, and the model's
    /// context, the latest messages, is the last to go.
    pub(crate) fn trim(&self, conversation: &mut Conversation) {
        conversation.keep_latest(self.limits.transcript_messages);
        // The oldest go, one after the other, until the rest is within the bytes; the latest stays.
        let mut over = conversation.bytes().saturating_sub(self.limits.transcript_bytes);
        let mut excess = 0;
        let older = conversation.messages().len().saturating_sub(1);
        for message in &conversation.messages()[..older] {
            if over == 0 {
                break;
            }
            over = over.saturating_sub(message.transcript_bytes());
            excess += 1;
        }
        conversation.forget_oldest(excess);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::Message;

    const HOUR: Duration = Duration::from_hours(1);

    async fn touch(sessions: &Sessions, id: Uuid, at: DateTime<Utc>) {
        sessions.get(id).expect("open").session.lock().await.last_active = at;
    }

    #[tokio::test]
    async fn sessions_idle_longer_than_the_timeout_end_and_the_others_stay() {
        let sessions = Sessions::default();
        let now = Utc::now();
        let stale = sessions.open("alice").expect("opened");
        let recent = sessions.open("bob").expect("opened");
        let exactly = sessions.open("carol").expect("opened");
        touch(&sessions, stale, now - chrono::TimeDelta::minutes(61)).await;
        touch(&sessions, recent, now - chrono::TimeDelta::minutes(59)).await;
        touch(&sessions, exactly, now - chrono::TimeDelta::hours(1)).await;

        let ended = sessions.end_idle(now, HOUR);
        assert_eq!(ended, vec![Ended { id: stale, owner: "alice".to_owned() }]);
        assert!(sessions.get(stale).is_none());
        assert!(sessions.get(recent).is_some());
        assert!(sessions.get(exactly).is_some(), "idle for exactly the timeout is not over it");
        assert_eq!(sessions.open.read().expect("not poisoned").by_id.len(), 2);
        assert!(sessions.end_idle(now, HOUR).is_empty(), "an ended session ends once");
    }

    #[tokio::test]
    async fn a_session_handling_a_message_is_not_ended() {
        let sessions = Sessions::default();
        let now = Utc::now();
        let busy = sessions.open("alice").expect("opened");
        touch(&sessions, busy, now - chrono::TimeDelta::days(1)).await;
        let session = sessions.get(busy).expect("open");
        let guard = session.session.lock().await;
        assert!(sessions.end_idle(now, HOUR).is_empty());
        drop(guard);
        assert_eq!(sessions.end_idle(now, HOUR).len(), 1);
    }

    #[test]
    fn the_gauge_is_the_number_of_open_sessions_through_open_close_and_idle_expiry() {
        let sessions = Sessions::with_gauge(limited(2, 3).limits, detached_gauge());
        let active = || sessions.active.get();
        assert_eq!(active(), 0);
        let first = sessions.open("alice").expect("opened");
        sessions.open("alice").expect("opened");
        sessions.open("bob").expect("opened");
        assert_eq!(active(), 3);
        assert!(sessions.open("carol").is_err());
        assert_eq!(active(), 3, "a refused session is not counted");
        sessions.close(first).expect("open");
        assert_eq!((active(), sessions.close(first)), (2, None), "a session closes once");
        assert!(sessions.end_idle(Utc::now(), HOUR).is_empty());
        assert_eq!(active(), 2, "none idle yet");
        let later = Utc::now() + chrono::TimeDelta::hours(2);
        assert_eq!(sessions.end_idle(later, HOUR).len(), 2);
        assert_eq!(active(), 0);
    }

    fn limited(per_key: usize, total: usize) -> Sessions {
        Sessions::new(SessionLimits { per_key, total, ..SessionLimits::default() })
    }

    #[test]
    fn sessions_are_limited_per_key_and_in_total_and_ending_one_frees_its_place() {
        let sessions = limited(2, 3);
        let first = sessions.open("alice").expect("opened");
        sessions.open("alice").expect("opened");
        assert_eq!(sessions.open("alice"), Err(SessionLimit::PerKey(2)));
        sessions.open("bob").expect("opened");
        assert_eq!(sessions.open("carol"), Err(SessionLimit::Total(3)));

        let later = Utc::now() + chrono::TimeDelta::hours(2);
        assert_eq!(sessions.end_idle(later, HOUR).len(), 3);
        assert!(sessions.get(first).is_none());
        assert!(sessions.open.read().expect("not poisoned").per_owner.is_empty(), "no count is left behind");
        let closing = sessions.open("alice").expect("room again");
        sessions.open("alice").expect("room again");
        assert_eq!(sessions.close(closing), Some(Ended { id: closing, owner: "alice".to_owned() }));
        assert_eq!(sessions.close(closing), None, "a session closes once");
        sessions.open("alice").expect("its place is free");
    }

    fn talk(n: usize, bytes: usize) -> Vec<Message> {
        (0..n)
            .flat_map(|i| {
                [
                    Message::User { content: format!("{i:04}{}", "u".repeat(bytes - 4)) },
                    Message::Assistant { content: "a".repeat(bytes) },
                ]
            })
            .collect()
    }

    #[test]
    fn a_transcript_keeps_its_latest_messages_within_its_bytes_and_count() {
        let sessions = Sessions::new(SessionLimits {
            transcript_bytes: 10_000,
            transcript_messages: 50,
            ..SessionLimits::default()
        });
        let mut conversation: Conversation = talk(20, 1_000).into_iter().collect();
        sessions.trim(&mut conversation);
        assert_eq!(conversation.messages().len(), 10, "10,000 bytes of 1,000-byte messages");
        assert_eq!(conversation.messages().last(), talk(20, 1_000).last(), "the latest stay");
        assert_eq!(conversation.bytes(), 10_000);

        let mut conversation: Conversation = talk(100, 10).into_iter().collect();
        sessions.trim(&mut conversation);
        assert_eq!(conversation.messages().len(), 50, "the count bounds short messages");

        let mut conversation: Conversation = [Message::User { content: "x".repeat(20_000) }].into_iter().collect();
        sessions.trim(&mut conversation);
        assert_eq!(conversation.messages().len(), 1, "the latest message always stays");
    }
}
