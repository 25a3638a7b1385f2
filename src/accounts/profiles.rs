//! Profiles: ours from the account, others' through `GET /query/profile`;
//! a change of ours is also sent as a new member event to every room the
//! user is in, as Synapse does, so other members see it.
//! Spec: client-server-api "Profiles", server-server-api.md "Querying for information".

use std::sync::Arc;

use ruma::{events::room::member::MembershipState, events::StateEventType, UserId};
use serde_json::{json, Map, Value};

use super::AccountService;
use crate::{
    error::{Error, Result},
    peers::Peers,
    request::at_most,
    rooms::RoomService,
};

/// Longest display name and avatar URL, as Synapse bounds them: both are
/// copied into a member event in every room the user is in.
const MAX_DISPLAYNAME_BYTES: usize = 256;
const MAX_AVATAR_URL_BYTES: usize = 1000;

/// The profile fields hearth keeps.
pub const FIELDS: [&str; 2] = ["displayname", "avatar_url"];

pub struct ProfileService {
    accounts: Arc<AccountService>,
    rooms: Arc<RoomService>,
    peers: Arc<Peers>,
}

impl ProfileService {
    pub fn new(accounts: Arc<AccountService>, rooms: Arc<RoomService>, peers: Arc<Peers>) -> Self {
        Self {
            accounts,
            rooms,
            peers,
        }
    }

    /// A local user's profile (only the fields that are set).
    pub fn local(&self, user: &UserId) -> Result<Value> {
        let (displayname, avatar_url) = self.accounts.profile(user)?;
        let mut profile = Map::new();
        if let Some(name) = displayname {
            profile.insert("displayname".into(), json!(name));
        }
        if let Some(url) = avatar_url {
            profile.insert("avatar_url".into(), json!(url));
        }
        Ok(Value::Object(profile))
    }

    /// Anyone's profile: ours locally, others' from their server.
    pub fn server_name(&self) -> &ruma::ServerName {
        self.rooms.server_name()
    }

    pub async fn get(&self, user: &UserId) -> Result<Value> {
        if user.server_name() == self.rooms.server_name() {
            return self.local(user);
        }
        self.peers.query_profile(user).await
    }

    /// Sets one field (`None` clears it) and announces it in every joined room.
    pub async fn set(&self, user: &UserId, field: &str, value: Option<String>) -> Result<()> {
        let max = if field == "displayname" {
            MAX_DISPLAYNAME_BYTES
        } else {
            MAX_AVATAR_URL_BYTES
        };
        at_most(field, value.as_deref().unwrap_or(""), max)?;
        match field {
            "displayname" => self.accounts.set_profile(user, Some(value.clone()), None)?,
            "avatar_url" => self.accounts.set_profile(user, None, Some(value.clone()))?,
            other => {
                return Err(Error::unrecognized(format!(
                    "profile field {other:?} is not supported"
                )))
            }
        }
        for room in self.rooms.room_ids()? {
            if self.rooms.membership_of(&room, user)? != Some(MembershipState::Join) {
                continue;
            }
            let Some((_, member)) =
                self.rooms
                    .state_event(&room, &StateEventType::RoomMember, user.as_str())?
            else {
                continue;
            };
            let mut content: Value = member
                .get("content")
                .cloned()
                .map(Into::into)
                .unwrap_or(json!({}));
            match &value {
                Some(v) => content[field] = json!(v),
                None => {
                    if let Some(object) = content.as_object_mut() {
                        object.remove(field);
                    }
                }
            }
            if let Err(e) = self
                .rooms
                .send(&room, user, "m.room.member", Some(user.as_str()), content)
                .await
            {
                tracing::warn!(%room, %user, error = %e, "profile change not announced");
            }
        }
        Ok(())
    }
}
