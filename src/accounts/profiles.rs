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

/// The profile fields copied into member events.
pub const FIELDS: [&str; 2] = ["displayname", "avatar_url"];
/// Longest extended field key, and all extended fields together.
const MAX_KEY_BYTES: usize = 255;
const MAX_EXTENDED_BYTES: usize = 64 * 1024;

/// A profile key a request names: `displayname`, `avatar_url`, or an
/// extended field (`m.tz`, or a namespaced key like `org.example.pronouns`).
/// Spec: client-server-api "Profiles" (v1.16 keys).
pub fn key(name: &str) -> Result<&str> {
    if name.len() > MAX_KEY_BYTES {
        return Err(Error::new(
            http::StatusCode::BAD_REQUEST,
            "M_KEY_TOO_LARGE",
            format!("profile keys are at most {MAX_KEY_BYTES} bytes"),
        ));
    }
    let part = |p: &str| {
        p.starts_with(|c: char| c.is_ascii_lowercase())
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    let namespaced = name.split('.').count() > 1 && name.split('.').all(part);
    if FIELDS.contains(&name) || name == "m.tz" || namespaced {
        Ok(name)
    } else {
        Err(Error::invalid_param(format!(
            "{name:?} is not a profile key"
        )))
    }
}

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
        for (key, value) in self.accounts.profile_fields(user)? {
            profile.entry(key).or_insert(value);
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

    /// Sets (`None`: removes) an extended field: kept with the account,
    /// not copied into member events.
    pub fn set_extended(&self, user: &UserId, key: &str, value: Option<Value>) -> Result<()> {
        self.accounts
            .set_profile_field(user, key, value, MAX_EXTENDED_BYTES)
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
