//! Delayed events (MSC4140, which Element Call uses): an event a user
//! sends now to go out later unless they restart its timer or cancel it,
//! so that "left the call" is said for a client that vanished. Kept in
//! the `delayed_events` tree until sent or cancelled; one task sends
//! what is due, sleeping until the next one (a restart sends what fell
//! due while the server was down).

use std::sync::Arc;

use rand::{distributions::Alphanumeric, Rng};
use ruma::{RoomId, UserId};
use serde_json::{json, Value};

use crate::{
    error::{Error, Result},
    rooms::RoomService,
    store::delayed::{Delayed, DelayedTree},
    time::now_ms,
};

/// Longest delay accepted (Synapse's example configuration's).
pub const MAX_DELAY_MS: u64 = 24 * 60 * 60 * 1000;
/// Delayed events one user may have waiting at once.
const MAX_PER_USER: usize = 100;

pub struct DelayedEvents {
    rooms: Arc<RoomService>,
    tree: DelayedTree,
    /// Woken when the earliest due time may have changed.
    changed: tokio::sync::Notify,
    /// Held while the waiting set is read and changed.
    changing: tokio::sync::Mutex<()>,
}

/// What a client does with a waiting delayed event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Restart,
    Cancel,
    Send,
}

impl Action {
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "restart" => Ok(Self::Restart),
            "cancel" => Ok(Self::Cancel),
            "send" => Ok(Self::Send),
            other => Err(Error::invalid_param(format!(
                "action must be restart, cancel or send, not {other:?}"
            ))),
        }
    }
}

impl DelayedEvents {
    pub fn new(rooms: Arc<RoomService>, tree: DelayedTree) -> Self {
        Self {
            rooms,
            tree,
            changed: tokio::sync::Notify::new(),
            changing: tokio::sync::Mutex::new(()),
        }
    }

    /// Schedules an event; its delay ID. A client's retry with the same
    /// transaction (`txn`: device and transaction ID) replaces it rather
    /// than adding another.
    pub async fn schedule(
        &self,
        user: &UserId,
        room: &RoomId,
        (kind, state_key): (&str, Option<&str>),
        content: Value,
        delay: u64,
        txn: Option<(&str, &str)>,
    ) -> Result<String> {
        if delay > MAX_DELAY_MS {
            return Err(Error::new(
                http::StatusCode::BAD_REQUEST,
                "M_MAX_DELAY_EXCEEDED",
                format!("the longest delay is {MAX_DELAY_MS} ms"),
            )
            .with_field("org.matrix.msc4140.errcode", "M_MAX_DELAY_EXCEEDED")
            .with_field("org.matrix.msc4140.max_delay", MAX_DELAY_MS));
        }
        if self.rooms.membership_of(room, user)?
            != Some(ruma::events::room::member::MembershipState::Join)
        {
            return Err(Error::forbidden(format!("{user} is not in {room}")));
        }
        let id = match txn {
            Some((device, txn)) => id_of_transaction(user, device, txn),
            None => random_id(),
        };
        let _one = self.changing.lock().await;
        let waiting = self.tree.all()?;
        let mine = waiting
            .iter()
            .filter(|(i, d)| d.user == user && *i != id)
            .count();
        if mine >= MAX_PER_USER {
            return Err(Error::limit_exceeded(
                format!("at most {MAX_PER_USER} delayed events may wait at once"),
                1_000,
            ));
        }
        let delayed = Delayed {
            user: user.to_owned(),
            room: room.to_owned(),
            kind: kind.to_owned(),
            state_key: state_key.map(str::to_owned),
            content,
            delay,
            send_at: now_ms().saturating_add(delay),
        };
        self.tree.put(&id, &delayed)?;
        self.changed.notify_one();
        Ok(id)
    }

    /// Restarts, cancels or sends now one of `user`'s delayed events.
    pub async fn act(&self, user: &UserId, id: &str, action: Action) -> Result<()> {
        let _one = self.changing.lock().await;
        let delayed = self
            .tree
            .get(id)?
            .filter(|d| d.user == user)
            .ok_or_else(|| Error::not_found(format!("no delayed event {id}")))?;
        match action {
            Action::Restart => {
                let restarted = Delayed {
                    send_at: now_ms().saturating_add(delayed.delay),
                    ..delayed
                };
                self.tree.put(id, &restarted)?;
            }
            Action::Cancel => {
                self.tree.remove(id)?;
            }
            Action::Send => {
                self.send(id, delayed).await?;
                self.tree.remove(id)?;
            }
        }
        self.changed.notify_one();
        Ok(())
    }

    /// `user`'s waiting delayed events, as MSC4140 lists them.
    pub fn waiting(&self, user: &UserId) -> Result<Vec<Value>> {
        let now = now_ms();
        Ok(self
            .tree
            .all()?
            .into_iter()
            .filter(|(_, d)| d.user == user)
            .map(|(id, d)| {
                let mut entry = json!({
                    "delay_id": id,
                    "room_id": d.room,
                    "type": d.kind,
                    "delay": d.delay,
                    "running_since": d.send_at.saturating_sub(d.delay),
                    "remaining": d.send_at.saturating_sub(now),
                    "content": d.content,
                });
                if let Some(key) = d.state_key {
                    entry["state_key"] = json!(key);
                }
                entry
            })
            .collect())
    }

    /// Sends what is due, then sleeps until the next is (or something
    /// changes). Runs until the server stops.
    pub async fn run(&self) {
        loop {
            let next = match self.send_due().await {
                Ok(next) => next,
                Err(e) => {
                    tracing::error!(error = %e.message, "cannot read delayed events");
                    Some(now_ms().saturating_add(60_000))
                }
            };
            let wait = next.map_or(std::time::Duration::from_secs(3600), |at| {
                std::time::Duration::from_millis(at.saturating_sub(now_ms()))
            });
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.changed.notified() => {}
            }
        }
    }

    /// Sends every event due now; when the next one falls due.
    async fn send_due(&self) -> Result<Option<u64>> {
        let _one = self.changing.lock().await;
        let now = now_ms();
        let mut next = None;
        for (id, delayed) in self.tree.all()? {
            if delayed.send_at > now {
                next = Some(next.map_or(delayed.send_at, |n: u64| n.min(delayed.send_at)));
                continue;
            }
            // Sent, then forgotten: a crash in between sends it twice
            // (a repeated state event changes nothing), never not at all.
            if let Err(e) = self.send(&id, delayed).await {
                // No longer allowed (the user left, lost power): dropped.
                tracing::info!(delay_id = %id, error = %e.message, "delayed event not sent");
            }
            self.tree.remove(&id)?;
        }
        Ok(next)
    }

    async fn send(&self, id: &str, delayed: Delayed) -> Result<()> {
        let event = self
            .rooms
            .send(
                &delayed.room,
                &delayed.user,
                &delayed.kind,
                delayed.state_key.as_deref(),
                delayed.content,
            )
            .await?;
        tracing::debug!(delay_id = %id, event_id = %event, "delayed event sent");
        Ok(())
    }
}

fn random_id() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect()
}

/// The same delay ID for a retried transaction of one device.
fn id_of_transaction(user: &UserId, device: &str, txn: &str) -> String {
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{user}\u{0}{device}\u{0}{txn}").as_bytes(),
    );
    digest.as_ref()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
