//! Sessions: a conversation and a memory per session, owned by the key that opened it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock};

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
    pub(crate) conversation: Conversation,
    /// What the memory tool keeps.
    #[serde(skip)]
    pub(crate) memory: BTreeMap<String, String>,
}

/// Every open session. A session's messages are handled one at a time, under its own lock; the map's lock
/// is held only to find or add one.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    open: RwLock<HashMap<Uuid, Arc<tokio::sync::Mutex<Session>>>>,
}

impl Sessions {
    /// Opens a session for `owner`.
    pub(crate) fn open(&self, owner: &str) -> Uuid {
        let id = Uuid::now_v7();
        let session = Session {
            id,
            owner: owner.to_owned(),
            created_at: Utc::now(),
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
}
