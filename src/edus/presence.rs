//! Presence: what our users set (`PUT /presence`, `/sync?set_presence=`)
//! goes to every server sharing a room with them as `m.presence`; what
//! other servers push is kept alongside. Both live in memory only:
//! presence is stale after a restart anyway.
//! Spec: client-server-api "Presence"; server-server-api.md "Presence".

use std::{collections::BTreeSet, time::Duration};

use ruma::{OwnedUserId, UserId};
use serde_json::{json, Value};

use super::{lock, EduService};
use crate::{error::Result, time::now_ms};

/// An update older than this is not worth delivering after an outage.
const PRESENCE_TTL: Duration = Duration::from_secs(300);

/// A user's presence, as last set or received.
#[derive(Debug, Clone)]
pub(super) struct Presence {
    state: String,
    status_msg: Option<String>,
    last_active_ms: u64,
    currently_active: bool,
    /// The change counter when it last changed (for incremental sync).
    changed: u64,
}

impl Presence {
    /// From an `m.presence` push entry.
    pub(super) fn from_edu(update: &Value, changed: u64) -> Option<Self> {
        let state = update.get("presence")?.as_str()?;
        if !is_state(state) {
            return None;
        }
        let ago = update.get("last_active_ago").and_then(Value::as_u64);
        Some(Self {
            state: state.to_owned(),
            status_msg: update
                .get("status_msg")
                .and_then(Value::as_str)
                .map(str::to_owned),
            last_active_ms: ago.map_or(0, |ago| now_ms().saturating_sub(ago)),
            currently_active: update
                .get("currently_active")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            changed,
        })
    }

    /// The `m.presence` content, as clients and servers see it.
    pub(super) fn content(&self) -> Value {
        let mut content = json!({
            "presence": self.state,
            "currently_active": self.currently_active,
        });
        if self.last_active_ms > 0 {
            content["last_active_ago"] = json!(now_ms().saturating_sub(self.last_active_ms));
        }
        if let Some(msg) = &self.status_msg {
            content["status_msg"] = json!(msg);
        }
        content
    }
}

/// The three states the spec defines.
pub fn is_state(state: &str) -> bool {
    matches!(state, "online" | "unavailable" | "offline")
}

impl EduService {
    /// One of our users sets their presence (`status_msg` unchanged when
    /// `None`); a change goes to the servers sharing a room with them.
    pub fn set_presence(
        &self,
        user: &UserId,
        state: &str,
        status_msg: Option<Option<String>>,
    ) -> Result<()> {
        let now = now_ms();
        let mut all = lock(&self.presence);
        let previous = all.get(user).cloned();
        let status_msg =
            status_msg.unwrap_or_else(|| previous.as_ref().and_then(|p| p.status_msg.clone()));
        let unchanged = previous
            .as_ref()
            .is_some_and(|p| p.state == state && p.status_msg == status_msg);
        let active = state == "online";
        let entry = Presence {
            state: state.to_owned(),
            status_msg,
            last_active_ms: if active || previous.is_none() {
                now
            } else {
                previous.as_ref().map_or(now, |p| p.last_active_ms)
            },
            currently_active: active,
            changed: previous.as_ref().map_or(0, |p| p.changed),
        };
        if unchanged {
            all.insert(user.to_owned(), entry);
            return Ok(());
        }
        drop(all);
        let changed = self.changed();
        let content = Presence { changed, ..entry };
        let mut push = content.content();
        push["user_id"] = json!(user);
        lock(&self.presence).insert(user.to_owned(), content);
        self.sender.queue_edu(
            self.rooms.servers_sharing_rooms_with(user)?,
            "m.presence",
            json!({ "push": [push] }),
            Some(PRESENCE_TTL),
        )
    }

    /// A user's presence content; `offline` when nothing is known.
    pub fn presence_of(&self, user: &UserId) -> Value {
        lock(&self.presence)
            .get(user)
            .map_or_else(|| json!({"presence": "offline"}), Presence::content)
    }

    /// `m.presence` events of users sharing a room with `user` that
    /// changed after the change counter `since` (all when `None`).
    pub fn presence_events(&self, user: &UserId, since: Option<u64>) -> Result<Vec<Value>> {
        let changed: Vec<(OwnedUserId, Value)> = lock(&self.presence)
            .iter()
            .filter(|(_, p)| since.is_none_or(|since| p.changed > since))
            .map(|(u, p)| (u.clone(), p.content()))
            .collect();
        if changed.is_empty() {
            return Ok(Vec::new());
        }
        let audience: BTreeSet<OwnedUserId> = self.rooms.users_sharing_rooms_with(user)?;
        Ok(changed
            .into_iter()
            .filter(|(u, _)| audience.contains(u))
            .map(|(u, content)| json!({"type": "m.presence", "sender": u, "content": content}))
            .collect())
    }
}
