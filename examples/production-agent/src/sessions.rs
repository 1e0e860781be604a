//! Sessions: a conversation and a memory per session, owned by the key that opened it, held in memory
//! until they have been idle for the configured time.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::agent::Conversation;

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

/// A session that was ended for being idle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ended {
    pub(crate) id: Uuid,
    pub(crate) owner: String,
}

/// Every open session. A session's messages are handled one at a time, under its own lock; the map's lock
/// is held only to find, add or end one.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    open: RwLock<HashMap<Uuid, Arc<tokio::sync::Mutex<Session>>>>,
}

impl Sessions {
    /// Opens a session for `owner`.
    pub(crate) fn open(&self, owner: &str) -> Uuid {
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
        self.open
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, Arc::new(tokio::sync::Mutex::new(session)));
        id
    }

    /// The session `id`, if it is open.
    pub(crate) fn get(&self, id: Uuid) -> Option<Arc<tokio::sync::Mutex<Session>>> {
        self.open.read().unwrap_or_else(PoisonError::into_inner).get(&id).cloned()
    }

    /// Ends the sessions last active more than `idle` before `now`, and returns them. A session handling
    /// a message (locked) is in use, whatever its time says, and stays.
    pub(crate) fn end_idle(&self, now: DateTime<Utc>, idle: Duration) -> Vec<Ended> {
        let idle = chrono::TimeDelta::from_std(idle).unwrap_or(chrono::TimeDelta::MAX);
        let mut ended = Vec::new();
        self.open.write().unwrap_or_else(PoisonError::into_inner).retain(|_, session| {
            let Ok(session) = session.try_lock() else { return true };
            let keep = now.signed_duration_since(session.last_active) <= idle;
            if !keep {
                ended.push(Ended { id: session.id, owner: session.owner.clone() });
            }
            keep
        });
        ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_hours(1);

    async fn touch(sessions: &Sessions, id: Uuid, at: DateTime<Utc>) {
        sessions.get(id).expect("open").lock().await.last_active = at;
    }

    #[tokio::test]
    async fn sessions_idle_longer_than_the_timeout_end_and_the_others_stay() {
        let sessions = Sessions::default();
        let now = Utc::now();
        let stale = sessions.open("alice");
        let recent = sessions.open("bob");
        let exactly = sessions.open("carol");
        touch(&sessions, stale, now - chrono::TimeDelta::minutes(61)).await;
        touch(&sessions, recent, now - chrono::TimeDelta::minutes(59)).await;
        touch(&sessions, exactly, now - chrono::TimeDelta::hours(1)).await;

        let ended = sessions.end_idle(now, HOUR);
        assert_eq!(ended, vec![Ended { id: stale, owner: "alice".to_owned() }]);
        assert!(sessions.get(stale).is_none());
        assert!(sessions.get(recent).is_some());
        assert!(sessions.get(exactly).is_some(), "idle for exactly the timeout is not over it");
        assert_eq!(sessions.open.read().expect("not poisoned").len(), 2);
        assert!(sessions.end_idle(now, HOUR).is_empty(), "an ended session ends once");
    }

    #[tokio::test]
    async fn a_session_handling_a_message_is_not_ended() {
        let sessions = Sessions::default();
        let now = Utc::now();
        let busy = sessions.open("alice");
        touch(&sessions, busy, now - chrono::TimeDelta::days(1)).await;
        let session = sessions.get(busy).expect("open");
        let guard = session.lock().await;
        assert!(sessions.end_idle(now, HOUR).is_empty());
        drop(guard);
        assert_eq!(sessions.end_idle(now, HOUR).len(), 1);
    }
}
