//! The membership handshakes with a resident server (`make_*` for a
//! template, `send_*` with the signed event), invites to another server's
//! user, and asking an inviter's server to issue a third-party invite.
//! Spec: server-server-api.md "Joining Rooms", "Knocking upon a room",
//! "Leaving Rooms (Rejecting Invites)", "Inviting to a room",
//! "Third-party invites".

use http::Method;
use ruma::{CanonicalJsonObject, EventId, RoomId, ServerName, UserId};
use serde::{de::DeserializeOwned, de::IgnoredAny, Deserialize, Serialize};
use serde_json::Value;

use super::Peers;
use crate::error::Result;
use crate::http_util::percent_encode;

/// Room versions we can join, offered to `make_join` as `ver`.
const SUPPORTED_VERSIONS: &[&str] = &[
    "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12",
];

/// One of the make/send handshakes.
pub struct Handshake {
    pub membership: &'static str,
    make: &'static str,
    /// The send endpoint, with its API version.
    send: &'static str,
    /// Whether `make` takes our supported room versions.
    versioned: bool,
}

pub const JOIN: Handshake = Handshake {
    membership: "join",
    make: "v1/make_join",
    send: "v2/send_join",
    versioned: true,
};
pub const LEAVE: Handshake = Handshake {
    membership: "leave",
    make: "v1/make_leave",
    send: "v2/send_leave",
    versioned: false,
};
pub const KNOCK: Handshake = Handshake {
    membership: "knock",
    make: "v1/make_knock",
    send: "v1/send_knock",
    versioned: true,
};

/// The answer of a `make_*`: the event template and the room's version.
#[derive(Deserialize)]
pub struct MakeAnswer {
    pub room_version: Option<String>,
    pub event: CanonicalJsonObject,
}

/// The answer of `send_join`, both ways: served with the events as stored
/// (`E` = raw JSON), read with the events to check (`E` = objects).
#[derive(Serialize, Deserialize)]
pub struct SendJoinAnswer<E> {
    #[serde(default)]
    pub origin: String,
    pub state: Vec<E>,
    pub auth_chain: Vec<E>,
    /// The join co-signed by the resident (restricted rooms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<CanonicalJsonObject>,
    /// Whether the state leaves out member events (the joiner asked).
    #[serde(default)]
    pub members_omitted: bool,
    #[serde(default)]
    pub servers_in_room: Vec<String>,
}

#[derive(Deserialize)]
pub struct SendKnockAnswer {
    #[serde(default)]
    pub knock_room_state: Vec<CanonicalJsonObject>,
}

#[derive(Deserialize)]
struct InviteAnswer {
    event: CanonicalJsonObject,
}

impl Peers {
    /// `GET make_*/{roomId}/{userId}`: the resident's event template.
    pub async fn make_membership(
        &self,
        server: &ServerName,
        kind: &Handshake,
        room: &RoomId,
        user: &UserId,
    ) -> Result<MakeAnswer> {
        let mut uri = format!(
            "/_matrix/federation/{}/{}/{}",
            kind.make,
            percent_encode(room.as_str()),
            percent_encode(user.as_str())
        );
        if kind.versioned {
            let versions: Vec<String> = SUPPORTED_VERSIONS
                .iter()
                .map(|v| format!("ver={v}"))
                .collect();
            uri = format!("{uri}?{}", versions.join("&"));
        }
        self.call(server, Method::GET, &uri, None).await
    }

    /// `PUT send_*/{roomId}/{eventId}` with our signed event; a join may
    /// ask for the state without member events (`omit_members`).
    pub async fn send_membership<T: DeserializeOwned>(
        &self,
        server: &ServerName,
        kind: &Handshake,
        room: &RoomId,
        event_id: &EventId,
        event: &Value,
        omit_members: bool,
    ) -> Result<T> {
        let mut uri = format!(
            "/_matrix/federation/{}/{}/{}",
            kind.send,
            percent_encode(room.as_str()),
            percent_encode(event_id.as_str())
        );
        if omit_members {
            uri.push_str("?omit_members=true");
        }
        self.call(server, Method::PUT, &uri, Some(event)).await
    }

    /// `PUT /v2/invite/{roomId}/{eventId}`: the invite co-signed by the
    /// invited user's server.
    pub async fn invite(
        &self,
        server: &ServerName,
        room: &RoomId,
        event_id: &EventId,
        body: &Value,
    ) -> Result<CanonicalJsonObject> {
        let uri = format!(
            "/_matrix/federation/v2/invite/{}/{}",
            percent_encode(room.as_str()),
            percent_encode(event_id.as_str())
        );
        let answer: InviteAnswer = self.call(server, Method::PUT, &uri, Some(body)).await?;
        Ok(answer.event)
    }

    /// `PUT /v1/exchange_third_party_invite/{roomId}`: asks the inviter's
    /// server to issue the invite.
    pub async fn exchange_third_party_invite(
        &self,
        server: &ServerName,
        room: &RoomId,
        body: &Value,
    ) -> Result<()> {
        let uri = format!(
            "/_matrix/federation/v1/exchange_third_party_invite/{}",
            percent_encode(room.as_str())
        );
        self.call::<IgnoredAny>(server, Method::PUT, &uri, Some(body))
            .await
            .map(|_| ())
    }
}
