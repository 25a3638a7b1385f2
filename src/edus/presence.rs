//! Presence: what our users set (`PUT /presence`, `/sync?set_presence=`)
//! goes to every server sharing a room with them as `m.presence`; what
//! other servers push is kept alongside. Both live in memory only:
//! presence is stale after a restart anyway.
//!
//! Presence also runs out, with Synapse's timings (its presence handler),
//! so that both sides agree: our users who stop syncing go offline 30 s
//! after their last sync ends; our users still online or away are
//! announced again every 25 minutes; other servers' users not heard of
//! for 30 minutes go offline (Synapse announces its users every 25).
//! Spec: client-server-api "Presence"; server-server-api.md "Presence".

use std::{sync::Arc, time::Duration};

use ruma::{OwnedUserId, UserId};
use serde_json::{json, Value};

use super::{lock, EduService};
use crate::{error::Result, time::now_ms};

/// Up to this many presence changes are checked one by one.
const FEW_CHANGES: usize = 8;

/// An update older than this is not worth delivering after an outage.
pub(super) const PRESENCE_TTL: Duration = Duration::from_secs(300);
/// Our user is offline this long after their last sync ended.
const SYNC_GRACE_MS: u64 = 30_000;
/// Our users online or away are announced again this often.
const ANNOUNCE_EVERY_MS: u64 = 25 * 60_000;
/// Another server's user not heard of for this long is offline.
const REMOTE_TIMEOUT_MS: u64 = 30 * 60_000;
/// How often presence is checked for running out.
const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// Longest status message kept (bytes); a longer one is cut.
const MAX_STATUS_MSG: usize = 1_024;

/// `msg` cut to [`MAX_STATUS_MSG`] bytes, at a character boundary.
fn bounded_status(msg: &str) -> String {
    let mut end = msg.len().min(MAX_STATUS_MSG);
    while !msg.is_char_boundary(end) {
        end -= 1;
    }
    msg[..end].to_owned()
}

/// A user's presence, as last set or received.
#[derive(Debug, Clone)]
pub(super) struct Presence {
    state: String,
    status_msg: Option<String>,
    last_active_ms: u64,
    currently_active: bool,
    /// The change counter when it last changed (for incremental sync).
    changed: u64,
    /// When we last heard of it: set by our user (a sync ending counts)
    /// or received from their server.
    heard_ms: u64,
    /// Our user's `/sync` requests in progress: never offline meanwhile.
    syncing: u32,
    /// When our user's presence last went to other servers.
    announced_ms: u64,
}

/// What running out of presence asks of an entry.
#[derive(Debug, PartialEq, Eq)]
enum Due {
    Nothing,
    Offline,
    Announce,
}

impl Presence {
    /// `local`: one of our users.
    fn due(&self, local: bool, now_ms: u64) -> Due {
        if self.state == "offline" {
            return Due::Nothing;
        }
        let silent = now_ms.saturating_sub(self.heard_ms);
        match local {
            true if self.syncing == 0 && silent > SYNC_GRACE_MS => Due::Offline,
            true if now_ms.saturating_sub(self.announced_ms) > ANNOUNCE_EVERY_MS => Due::Announce,
            false if silent > REMOTE_TIMEOUT_MS => Due::Offline,
            _ => Due::Nothing,
        }
    }

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
                .map(bounded_status),
            last_active_ms: ago.map_or(0, |ago| now_ms().saturating_sub(ago)),
            currently_active: update
                .get("currently_active")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            changed,
            heard_ms: now_ms(),
            syncing: 0,
            announced_ms: 0,
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
        let status_msg = status_msg
            .map(|msg| msg.as_deref().map(bounded_status))
            .unwrap_or_else(|| previous.as_ref().and_then(|p| p.status_msg.clone()));
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
            heard_ms: now,
            syncing: previous.as_ref().map_or(0, |p| p.syncing),
            announced_ms: previous.as_ref().map_or(0, |p| p.announced_ms),
        };
        if unchanged {
            all.insert(user.to_owned(), entry);
            return Ok(());
        }
        drop(all);
        let changed = self.changed();
        let content = Presence {
            changed,
            announced_ms: now,
            ..entry
        };
        let push = content.content();
        lock(&self.presence).insert(user.to_owned(), content);
        self.outbox
            .queue_presence(&self.rooms, user, push.clone(), PRESENCE_TTL)?;
        self.announce(user, push)
    }

    /// Sends our user's presence to every server sharing a room with them.
    fn announce(&self, user: &UserId, mut push: Value) -> Result<()> {
        push["user_id"] = json!(user);
        self.outbox.queue_edu(
            self.rooms.servers_sharing_rooms_with(user)?,
            "m.presence",
            json!({ "push": [push] }),
            Some(PRESENCE_TTL),
        )
    }

    /// Our user's `/sync` begins with their presence set to `state`; they
    /// keep it until the sync ends and for a grace period after.
    pub fn syncing(self: &Arc<Self>, user: &UserId, state: &str) -> Result<Syncing> {
        self.set_presence(user, state, None)?;
        if let Some(p) = lock(&self.presence).get_mut(user) {
            p.syncing += 1;
        }
        Ok(Syncing {
            edus: self.clone(),
            user: user.to_owned(),
        })
    }

    /// Runs presence out, for as long as the server runs.
    pub async fn run_presence_timers(&self) {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        loop {
            tick.tick().await;
            self.sweep(now_ms());
        }
    }

    /// Takes offline who is gone and announces again who is still here.
    fn sweep(&self, now: u64) {
        let own = self.rooms.server_name().to_owned();
        let (mut announce, mut went_offline) = (Vec::new(), Vec::new());
        {
            // One change for everyone taken offline in this sweep.
            let mut changed = None;
            let mut all = lock(&self.presence);
            for (user, presence) in all.iter_mut() {
                let local = user.server_name() == own;
                match presence.due(local, now) {
                    Due::Nothing => continue,
                    Due::Offline => {
                        presence.state = "offline".into();
                        presence.currently_active = false;
                        presence.changed = *changed.get_or_insert_with(|| self.changed());
                        went_offline.push((user.clone(), presence.content()));
                    }
                    Due::Announce => {}
                }
                if local {
                    presence.announced_ms = now;
                    announce.push((user.clone(), presence.content()));
                }
            }
        }
        for (user, content) in went_offline {
            if let Err(e) = self
                .outbox
                .queue_presence(&self.rooms, &user, content, PRESENCE_TTL)
            {
                tracing::warn!(%user, error = %e.message, "presence not queued for bridges");
            }
        }
        for (user, push) in announce {
            if let Err(e) = self.announce(&user, push) {
                tracing::warn!(%user, error = %e.message, "presence not announced");
            }
        }
    }

    /// A user's presence content; `offline` when nothing is known.
    pub fn presence_of(&self, user: &UserId) -> Value {
        lock(&self.presence)
            .get(user)
            .map_or_else(|| json!({"presence": "offline"}), Presence::content)
    }

    /// A user's presence content, when anything is known of it.
    pub fn known_presence(&self, user: &UserId) -> Option<Value> {
        lock(&self.presence).get(user).map(Presence::content)
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
        // Few changes are each checked; many, against everyone sharing a
        // room with the user, gathered once.
        let audience = (changed.len() > FEW_CHANGES)
            .then(|| self.rooms.users_sharing_rooms_with(user))
            .transpose()?;
        let mut events = Vec::new();
        for (other, content) in changed {
            let shares = match &audience {
                Some(audience) => audience.contains(&other),
                None => other == user || self.rooms.shares_a_room(user, &other)?,
            };
            if shares {
                events.push(json!({"type": "m.presence", "sender": other, "content": content}));
            }
        }
        Ok(events)
    }
}

/// An in-progress `/sync`; when it ends, the user was last heard of now.
pub struct Syncing {
    edus: Arc<EduService>,
    user: OwnedUserId,
}

impl Drop for Syncing {
    fn drop(&mut self) {
        if let Some(p) = lock(&self.edus.presence).get_mut(&self.user) {
            p.syncing = p.syncing.saturating_sub(1);
            p.heard_ms = now_ms();
        }
    }
}

#[cfg(test)]
mod tests;
