//! Membership that needs another server: joining, leaving (rejecting an
//! invite), knocking through a resident server's `make_*`/`send_*`
//! handshake, and inviting another server's user.
//! Spec: server-server-api.md "Joining Rooms", "Knocking upon a room",
//! "Inviting to a room", "Leaving Rooms (Rejecting Invites)".

mod handshake;
pub mod invite;
pub mod third_party_invite;

use std::sync::Arc;

use ruma::{
    events::room::member::MembershipState, CanonicalJsonObject, CanonicalJsonValue, OwnedEventId,
    OwnedServerName, RoomId, RoomVersionId, UserId,
};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

/// What a client adds to its own member event: a `reason`, and any
/// other fields it likes (Synapse keeps them too); `membership` is ours.
pub type Content = serde_json::Map<String, Value>;

use crate::rooms::{checks::CheckedPdu, RoomService};
use crate::{
    error::{Error, Result},
    peers::{Handshake, Peers, SendKnockAnswer, KNOCK, LEAVE},
    store::pending::Pending,
};

pub struct MembershipService {
    pub(in crate::rooms) rooms: Arc<RoomService>,
    pub(in crate::rooms) peers: Arc<Peers>,
    /// Whether joins ask for partial state (`rooms.partial_state_joins`).
    partial_joins: bool,
}

impl MembershipService {
    pub fn new(rooms: Arc<RoomService>, peers: Arc<Peers>, partial_joins: bool) -> Self {
        Self {
            rooms,
            peers,
            partial_joins,
        }
    }

    /// `user`'s join or leave as an event of ours, in a room this server
    /// is in; an invite or knock it answers is settled.
    pub(in crate::rooms) async fn own_membership(
        &self,
        room: &RoomId,
        user: &UserId,
        membership: &str,
        extra: &Content,
    ) -> Result<OwnedEventId> {
        let mut content = extra.clone();
        content.insert("membership".into(), membership.into());
        let content = Value::Object(content);
        let key = Some(user.as_str());
        let id = self
            .rooms
            .send(room, user, "m.room.member", key, content)
            .await?;
        self.rooms.settle_pending(user, room).await?;
        Ok(id)
    }

    /// Makes `user` leave `room`: an event of ours when this server is in
    /// the room, else (rejecting an invite, retracting a knock) through a
    /// resident: `servers`, or the server that invited us.
    pub async fn leave(
        &self,
        room: &RoomId,
        user: &UserId,
        servers: &[OwnedServerName],
        extra: &Content,
    ) -> Result<OwnedEventId> {
        if self.resident(room) {
            return self.own_membership(room, user, "leave", extra).await;
        }
        let candidates = self.candidates(room, user, servers)?;
        self.through(room, user, &candidates, |server| async move {
            let (leave, _, _) = self
                .handshake::<serde_json::Value>(&LEAVE, room, user, &server, extra)
                .await?;
            self.rooms
                .close_pending(user, room, &leave.event_id, leave.object)
                .await?;
            Ok(leave.event_id)
        })
        .await
    }

    /// Leaves every room `user` is in, invited to or knocking on (an
    /// account being deactivated); failures are logged, not fatal.
    pub async fn leave_all(&self, user: &UserId) -> Result<()> {
        let mut rooms = Vec::new();
        for room in self.rooms.room_ids()? {
            if let Some(MembershipState::Join | MembershipState::Invite | MembershipState::Knock) =
                self.rooms.membership_of(&room, user)?
            {
                rooms.push(room);
            }
        }
        rooms.extend(self.rooms.pending_of(user)?.into_iter().map(|p| p.room_id));
        for room in rooms {
            if let Err(error) = self.leave(&room, user, &[], &Content::new()).await {
                tracing::warn!(%room, %user, %error, "could not leave on deactivation");
            }
        }
        Ok(())
    }

    /// Whether one of our users is joined to the room.
    pub(in crate::rooms) fn resident(&self, room: &RoomId) -> bool {
        let own = self.peers.server_name();
        self.rooms
            .joined_servers(room)
            .is_ok_and(|s| s.contains(own))
    }

    /// Servers to reach a room through: those given, the server that
    /// invited the user, and the one in the room ID (before v12).
    pub(in crate::rooms) fn candidates(
        &self,
        room: &RoomId,
        user: &UserId,
        servers: &[OwnedServerName],
    ) -> Result<Vec<OwnedServerName>> {
        let mut candidates = servers.to_vec();
        candidates.extend(self.rooms.inviting_servers(user, room)?);
        candidates.extend(room.server_name().map(ToOwned::to_owned));
        let mut seen = std::collections::HashSet::new();
        candidates.retain(|s| seen.insert(s.clone()));
        Ok(candidates)
    }

    /// Knocks on `room` for `user`: a local event when we are in the room,
    /// else through the first of `servers` that takes the knock, kept as a
    /// pending membership with the room's state.
    pub async fn knock(
        &self,
        room: &RoomId,
        user: &UserId,
        servers: &[OwnedServerName],
        extra: &Content,
    ) -> Result<OwnedEventId> {
        if self.resident(room) {
            let mut content = extra.clone();
            content.insert("membership".into(), "knock".into());
            return self
                .rooms
                .send(
                    room,
                    user,
                    "m.room.member",
                    Some(user.as_str()),
                    Value::Object(content),
                )
                .await;
        }
        self.through(room, user, servers, |server| async move {
            let (knock, version, answer) = self
                .handshake::<SendKnockAnswer>(&KNOCK, room, user, &server, extra)
                .await?;
            let pending = Pending {
                room_id: room.to_owned(),
                membership: "knock".into(),
                room_version: version.to_string(),
                event_id: Some(knock.event_id.to_string()),
                event: knock.object,
                room_state: answer.knock_room_state,
                position: 0,
            };
            self.rooms.record_pending(user, pending).await?;
            Ok(knock.event_id)
        })
        .await
    }

    /// `sender` (ours) invites `target`: directly when the target is ours,
    /// else co-signed by the target's server first. `is_direct` marks a
    /// direct chat; `reason` is shown to the invitee.
    pub async fn invite(
        &self,
        room: &RoomId,
        sender: &UserId,
        target: &UserId,
        is_direct: bool,
        reason: Option<&str>,
    ) -> Result<OwnedEventId> {
        let mut content = json!({"membership": "invite"});
        if is_direct {
            content["is_direct"] = json!(true);
        }
        if let Some(reason) = reason {
            content["reason"] = json!(reason);
        }
        self.invite_with(room, sender, target, content).await
    }

    /// [`Self::invite`] with the invite's content given.
    pub(in crate::rooms) async fn invite_with(
        &self,
        room: &RoomId,
        sender: &UserId,
        target: &UserId,
        content: serde_json::Value,
    ) -> Result<OwnedEventId> {
        let server = target.server_name();
        if server == self.peers.server_name() {
            return self
                .rooms
                .send(
                    room,
                    sender,
                    "m.room.member",
                    Some(target.as_str()),
                    content,
                )
                .await;
        }
        let invite = self
            .rooms
            .prepare_invite(room, sender, target, content)
            .await?;
        let state: Vec<CanonicalJsonValue> = invite
            .room_state
            .into_iter()
            .map(CanonicalJsonValue::Object)
            .collect();
        let body = json!({
            "room_version": invite.room_version,
            "event": CanonicalJsonValue::Object(invite.event.object),
            "invite_room_state": state,
        });
        let event_id = &invite.event.event_id;
        let signed = self.peers.invite(server, room, event_id, &body).await?;
        self.rooms
            .append_invite(room, event_id, server, signed)
            .await?;
        Ok(invite.event.event_id)
    }

    /// Tries `attempt` with each of `servers` (never ourselves) until one
    /// succeeds; the last refusal is the error otherwise.
    pub(in crate::rooms) async fn through<F, Fut>(
        &self,
        room: &RoomId,
        user: &UserId,
        servers: &[OwnedServerName],
        attempt: F,
    ) -> Result<OwnedEventId>
    where
        F: Fn(OwnedServerName) -> Fut,
        Fut: std::future::Future<Output = Result<OwnedEventId>>,
    {
        let own = self.peers.server_name();
        if user.server_name() != own {
            return Err(Error::forbidden(format!(
                "{user} is not a user of this server"
            )));
        }
        let mut last = Error::not_found(format!("no server to reach {room} through"));
        for server in servers.iter().filter(|s| *s != own) {
            match attempt(server.clone()).await {
                Ok(id) => return Ok(id),
                Err(e) => {
                    tracing::info!(%room, %server, error = %e, "membership attempt failed");
                    last = e;
                }
            }
        }
        Err(last)
    }

    /// make_* → check the template → sign → send_*; returns our signed
    /// event, the room version and the send answer.
    pub(in crate::rooms) async fn handshake<T: DeserializeOwned>(
        &self,
        kind: &Handshake,
        room: &RoomId,
        user: &UserId,
        server: &OwnedServerName,
        extra: &Content,
    ) -> Result<(CheckedPdu, RoomVersionId, T)> {
        let answer = self.peers.make_membership(server, kind, room, user).await?;
        let version = RoomVersionId::try_from(answer.room_version.as_deref().unwrap_or("1"))
            .map_err(|e| Error::remote(format!("{server} named a bad room version: {e}")))?;
        let mut template = answer.event;
        check_template(&template, room, user, kind.membership)
            .map_err(|e| Error::remote(format!("{server}'s {} template: {e}", kind.membership)))?;
        if let Some(CanonicalJsonValue::Object(content)) = template.get_mut("content") {
            for (field, value) in extra.iter().filter(|(f, _)| *f != "membership") {
                let value = CanonicalJsonValue::try_from(value.clone())
                    .map_err(|e| Error::bad_json(format!("{field}: {e}")))?;
                content.insert(field.clone(), value);
            }
            if kind.membership == "join" {
                let mut profile = serde_json::json!({});
                self.rooms.add_profile(user, &mut profile)?;
                for (field, value) in profile.as_object().into_iter().flatten() {
                    if let Some(value) = value.as_str() {
                        content.entry(field.clone()).or_insert(value.into());
                    }
                }
            }
        }
        let event = self.rooms.sign_template(template, &version)?;
        // A rejoin asks for the full state: the room's old state is
        // resolved with the answer, which a partial answer cannot take.
        let omit_members =
            kind.membership == "join" && self.partial_joins && !self.rooms.is_known(room)?;
        let body = serde_json::Value::from(CanonicalJsonValue::Object(event.object.clone()));
        let answer: T = self
            .peers
            .send_membership(server, kind, room, &event.event_id, &body, omit_members)
            .await?;
        Ok((event, version, answer))
    }
}

/// The template must be `user`'s `membership` for themselves in `room`.
fn check_template(
    template: &CanonicalJsonObject,
    room: &RoomId,
    user: &UserId,
    membership: &str,
) -> std::result::Result<(), String> {
    let text = |field: &str| match template.get(field) {
        Some(CanonicalJsonValue::String(s)) => Some(s.as_str()),
        _ => None,
    };
    let given = match template.get("content") {
        Some(CanonicalJsonValue::Object(content)) => match content.get("membership") {
            Some(CanonicalJsonValue::String(m)) => Some(m.as_str()),
            _ => None,
        },
        _ => None,
    };
    if text("type") != Some("m.room.member") || given != Some(membership) {
        return Err(format!("not a {membership} event"));
    }
    if text("sender") != Some(user.as_str()) || text("state_key") != Some(user.as_str()) {
        return Err(format!("not a {membership} for {user}"));
    }
    if text("room_id") != Some(room.as_str()) {
        return Err(format!("not for room {room}"));
    }
    Ok(())
}

/// The server of the user who sent an invite: a resident to reject it through.
pub(in crate::rooms) fn inviting_server(invite: &CanonicalJsonObject) -> Option<OwnedServerName> {
    match invite.get("sender") {
        Some(CanonicalJsonValue::String(sender)) => <&UserId>::try_from(sender.as_str())
            .ok()
            .map(|u| u.server_name().to_owned()),
        _ => None,
    }
}
