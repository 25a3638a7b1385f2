//! Third-party invites: an invite to an email address becomes a Matrix
//! invite once the address is bound. As the invited user's server we take
//! the identity server's `/3pid/onbind` and ask the inviter's server to
//! issue the invite; as the inviter's server we issue it, after the auth
//! rules have checked the identity server's signature against the keys in
//! the room's `m.room.third_party_invite` event.
//! Spec: server-server-api.md "Third-party invites"; third_party_invite.yaml.

use ruma::{
    events::StateEventType, CanonicalJsonObject, CanonicalJsonValue, OwnedRoomId, OwnedServerName,
    OwnedUserId, RoomId, ServerName,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::MembershipService;
use crate::error::{Error, Result};

/// More invites than this in one `/3pid/onbind` are refused: each costs a
/// request to another server.
const MAX_BOUND_INVITES: usize = 50;

/// The body of `PUT /exchange_third_party_invite/{roomId}`: an invite
/// event without its DAG fields.
#[derive(Serialize, Deserialize)]
pub struct PartialInvite {
    #[serde(rename = "type")]
    pub kind: String,
    pub room_id: OwnedRoomId,
    /// Our user, who sent the `m.room.third_party_invite`.
    pub sender: OwnedUserId,
    /// The invited user, the other server's.
    pub state_key: OwnedUserId,
    pub content: InviteContent,
}

#[derive(Serialize, Deserialize)]
pub struct InviteContent {
    pub membership: String,
    pub third_party_invite: ThirdPartyInvite,
}

#[derive(Serialize, Deserialize)]
pub struct ThirdPartyInvite {
    /// The identity server's `{mxid, token, signatures}`, kept verbatim:
    /// its signature covers every field.
    pub signed: CanonicalJsonObject,
}

/// The body of `PUT /3pid/onbind`.
#[derive(Deserialize)]
pub struct Bind {
    pub mxid: OwnedUserId,
    pub invites: Vec<BoundInvite>,
}

#[derive(Deserialize)]
pub struct BoundInvite {
    pub mxid: OwnedUserId,
    pub room_id: OwnedRoomId,
    pub sender: OwnedUserId,
    pub signed: CanonicalJsonObject,
}

impl MembershipService {
    /// `PUT /exchange_third_party_invite`: `origin` asks us to turn our
    /// user's third-party invite into an invite of its user.
    pub async fn exchange_third_party_invite(
        &self,
        origin: &ServerName,
        room: &RoomId,
        request: PartialInvite,
    ) -> Result<()> {
        if request.room_id != room {
            return Err(Error::invalid_param("room_id differs from the path"));
        }
        if request.kind != "m.room.member" || request.content.membership != "invite" {
            return Err(Error::invalid_param("not an m.room.member invite"));
        }
        if request.state_key.server_name() != origin {
            return Err(Error::forbidden(format!(
                "{origin} may only exchange invites of its own users"
            )));
        }
        let signed = request.content.third_party_invite.signed;
        let field = |name: &str| match signed.get(name) {
            Some(CanonicalJsonValue::String(value)) => Ok(value.clone()),
            _ => Err(Error::invalid_param(format!("signed.{name} is missing"))),
        };
        if field("mxid")? != request.state_key.as_str() {
            return Err(Error::invalid_param("signed.mxid is not the invited user"));
        }
        self.rooms.check_acl(room, origin)?;
        // The name shown is the one our user chose, not the other server's.
        let token = field("token")?;
        let (_, original) = self
            .rooms
            .state_event(room, &StateEventType::RoomThirdPartyInvite, &token)?
            .ok_or_else(|| Error::forbidden("no third-party invite has that token"))?;
        let mut third_party_invite = json!({ "signed": CanonicalJsonValue::Object(signed) });
        if let Some(CanonicalJsonValue::Object(content)) = original.get("content") {
            if let Some(name) = content.get("display_name") {
                third_party_invite["display_name"] = Value::from(name.clone());
            }
        }
        let content = json!({ "membership": "invite", "third_party_invite": third_party_invite });
        self.invite_with(room, &request.sender, &request.state_key, content)
            .await?;
        Ok(())
    }

    /// `PUT /3pid/onbind`: for each pending invite of our newly bound
    /// user, asks the inviter's server (or the room's) to issue it. The
    /// first failure is the answer, once every invite has been tried.
    pub async fn on_bind(&self, bind: Bind) -> Result<()> {
        let own = self.peers.server_name().to_owned();
        if bind.mxid.server_name() != own {
            return Err(Error::invalid_param(format!(
                "{} is not a user of this server",
                bind.mxid
            )));
        }
        if bind.invites.len() > MAX_BOUND_INVITES {
            return Err(Error::too_large(format!(
                "at most {MAX_BOUND_INVITES} invites per binding"
            )));
        }
        let mut first_failure = None;
        for invite in bind.invites {
            let outcome = if invite.mxid == bind.mxid {
                self.forward(&own, invite).await
            } else {
                Err(Error::invalid_param("an invite for another user"))
            };
            if let Err(error) = outcome {
                tracing::warn!(%error, "a bound third-party invite was not issued");
                first_failure.get_or_insert(error);
            }
        }
        first_failure.map_or(Ok(()), Err)
    }

    /// Sends one bound invite to the servers that can issue it: the
    /// inviter's, then the room's (rooms before v12 name one).
    pub(in crate::rooms) async fn forward(
        &self,
        own: &ServerName,
        invite: BoundInvite,
    ) -> Result<()> {
        let mut servers: Vec<OwnedServerName> = vec![invite.sender.server_name().to_owned()];
        if let Some(server) = invite.room_id.server_name() {
            if !servers.iter().any(|s| s == server) && server != own {
                servers.push(server.to_owned());
            }
        }
        let room = invite.room_id.clone();
        let request = PartialInvite {
            kind: "m.room.member".into(),
            room_id: invite.room_id,
            sender: invite.sender,
            state_key: invite.mxid,
            content: InviteContent {
                membership: "invite".into(),
                third_party_invite: ThirdPartyInvite {
                    signed: invite.signed,
                },
            },
        };
        if servers[0] == own {
            // The inviter is ours: only we can issue the invite.
            return self.exchange_third_party_invite(own, &room, request).await;
        }
        let body = serde_json::to_value(&request).map_err(|e| Error::internal(e.to_string()))?;
        let mut last = Error::not_found("no server can issue the invite");
        for server in servers {
            match self
                .peers
                .exchange_third_party_invite(&server, &room, &body)
                .await
            {
                Ok(_) => return Ok(()),
                Err(error) => last = error,
            }
        }
        Err(last)
    }
}
