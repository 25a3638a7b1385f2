//! Typing notifications: our users' (sent to the room's other servers)
//! and other servers' users', each lapsing after its timeout. A lapse is
//! a change like any other: clients' `/sync` sees the user stop typing,
//! and the other servers are told our user stopped (as Synapse does).
//! Spec: client-server-api "Typing Notifications"; server-server-api.md
//! "Typing Notifications".

use std::time::{Duration, Instant};

use ruma::{OwnedRoomId, OwnedUserId, RoomId, ServerName, UserId};
use serde::Deserialize;
use serde_json::Value;

use super::{lock, EduService, Handled};

/// A typing notification lapses after this without a renewal (the EDU
/// carries no timeout; Synapse uses the same).
const TYPING_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Deserialize)]
struct Typing {
    room_id: OwnedRoomId,
    user_id: OwnedUserId,
    typing: bool,
}

/// How often lapsed typing notifications are looked for.
const EXPIRE_EVERY: Duration = Duration::from_secs(1);

impl EduService {
    pub(super) fn typing(&self, origin: &ServerName, content: Value) -> Handled {
        let typing: Typing = serde_json::from_value(content).map_err(|e| e.to_string())?;
        self.check_member(&typing.room_id, &typing.user_id, origin)?;
        let mut all = lock(&self.typing);
        let room = all.entry(typing.room_id.clone()).or_default();
        if typing.typing {
            room.insert(typing.user_id, Instant::now() + TYPING_TIMEOUT);
        } else {
            room.remove(&typing.user_id);
        }
        drop(all);
        self.room_changed(&typing.room_id);
        self.typing_to_appservices(&typing.room_id);
        Ok(())
    }

    /// One of our users starts or stops typing (for `timeout`, capped);
    /// the room's other servers are told, unless it is stale by then.
    pub fn set_typing(
        &self,
        room: &RoomId,
        user: &UserId,
        typing: Option<Duration>,
    ) -> crate::error::Result<()> {
        self.tell_typing(room, user, typing.is_some())?;
        let mut all = lock(&self.typing);
        let users = all.entry(room.to_owned()).or_default();
        match typing {
            Some(timeout) => {
                users.insert(
                    user.to_owned(),
                    Instant::now() + timeout.min(TYPING_TIMEOUT),
                );
            }
            None => {
                users.remove(user);
            }
        }
        drop(all);
        self.room_changed(room);
        self.typing_to_appservices(room);
        Ok(())
    }

    /// Who types in `room` now, for the application services interested.
    fn typing_to_appservices(&self, room: &RoomId) {
        let content = serde_json::json!({ "user_ids": self.typing_in(room) });
        let queued = self.outbox.queue_ephemeral(
            &self.rooms,
            room,
            "m.typing",
            content,
            Some(TYPING_TIMEOUT),
        );
        if let Err(e) = queued {
            tracing::warn!(%room, error = %e.message, "typing not queued for application services");
        }
    }

    /// Users typing in `room` now. Lapsed ones stay for the timer to
    /// drop: it counts the change that wakes `/sync`.
    pub fn typing_in(&self, room: &RoomId) -> Vec<OwnedUserId> {
        let now = Instant::now();
        let all = lock(&self.typing);
        let mut typing: Vec<OwnedUserId> = all
            .get(room)
            .into_iter()
            .flatten()
            .filter(|(_, until)| **until > now)
            .map(|(user, _)| user.clone())
            .collect();
        typing.sort();
        typing
    }

    /// Ends lapsed typing notifications, for as long as the server runs.
    pub async fn run_typing_timers(&self) {
        let mut tick = tokio::time::interval(EXPIRE_EVERY);
        loop {
            tick.tick().await;
            self.expire_typing(Instant::now());
        }
    }

    /// Drops the typing notifications lapsed by `now`: each room that had
    /// one changes, and our users' lapses go to the room's other servers.
    fn expire_typing(&self, now: Instant) {
        let own = self.rooms.server_name().to_owned();
        let mut lapsed: Vec<(OwnedRoomId, Vec<OwnedUserId>)> = Vec::new();
        {
            let mut all = lock(&self.typing);
            for (room, users) in all.iter_mut() {
                let before = users.len();
                let mut ours = Vec::new();
                users.retain(|user, until| {
                    let live = *until > now;
                    if !live && user.server_name() == own {
                        ours.push(user.clone());
                    }
                    live
                });
                if users.len() != before {
                    lapsed.push((room.clone(), ours));
                }
            }
            all.retain(|_, users| !users.is_empty());
        }
        for (room, ours) in lapsed {
            self.room_changed(&room);
            self.typing_to_appservices(&room);
            for user in ours {
                if let Err(e) = self.tell_typing(&room, &user, false) {
                    tracing::warn!(%room, %user, error = %e.message, "typing stop not sent");
                }
            }
        }
    }

    /// Tells the room's other servers; stale after the timeout.
    fn tell_typing(&self, room: &RoomId, user: &UserId, typing: bool) -> crate::error::Result<()> {
        self.outbox.queue_edu(
            self.rooms.joined_servers(room)?,
            "m.typing",
            serde_json::json!({"room_id": room, "user_id": user, "typing": typing}),
            Some(TYPING_TIMEOUT),
        )
    }
}
