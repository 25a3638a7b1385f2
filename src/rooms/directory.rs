//! Room aliases (ours in the `aliases` tree, other servers' through
//! `GET /query/directory`) and the public room list. Spec: client-server-api "Room aliases",
//! server-server-api.md "Querying for information".

use std::sync::Arc;

use ruma::{
    events::{room::member::MembershipState, StateEventType},
    OwnedRoomAliasId, OwnedServerName, RoomAliasId, RoomId, UserId,
};
use serde_json::{json, Value};

use super::RoomService;
use crate::{
    error::{Error, Result},
    peers::Peers,
    store::aliases::{AliasRecord, AliasTree, PublicRoomTree},
};

pub struct DirectoryService {
    rooms: Arc<RoomService>,
    peers: Arc<Peers>,
    aliases: AliasTree,
    public: PublicRoomTree,
}

/// Most alternative aliases a canonical alias event may name (each is
/// resolved, perhaps over federation, before it is accepted).
const MAX_ALT_ALIASES: usize = 50;

/// Most rooms in one page of the public room list.
const MAX_PAGE: usize = 100;

pub use crate::peers::Resolved;

fn in_use(alias: &RoomAliasId) -> Error {
    Error::new(
        http::StatusCode::BAD_REQUEST,
        "M_ROOM_IN_USE",
        format!("{alias} is already taken"),
    )
}

impl DirectoryService {
    pub fn new(
        rooms: Arc<RoomService>,
        peers: Arc<Peers>,
        aliases: AliasTree,
        public: PublicRoomTree,
    ) -> Self {
        Self {
            rooms,
            peers,
            aliases,
            public,
        }
    }

    /// The alias `#localpart:us`, if it is valid and free.
    pub fn check_new_alias(&self, localpart: &str) -> Result<OwnedRoomAliasId> {
        let alias =
            OwnedRoomAliasId::try_from(format!("#{localpart}:{}", self.rooms.server_name()))
                .map_err(|e| Error::invalid_param(format!("#{localpart}: {e}")))?;
        if self.aliases.get(&alias)?.is_some() {
            return Err(in_use(&alias));
        }
        Ok(alias)
    }

    /// Points one of our aliases at a room.
    pub fn put_alias(&self, alias: &RoomAliasId, room: &RoomId, creator: &UserId) -> Result<()> {
        if alias.server_name() != self.rooms.server_name() {
            return Err(Error::invalid_param(format!(
                "{alias} is not an alias of this server"
            )));
        }
        let record = AliasRecord {
            room_id: room.to_owned(),
            creator: creator.to_owned(),
        };
        if !self.aliases.create(alias, &record)? {
            return Err(in_use(alias));
        }
        Ok(())
    }

    /// Removes one of our aliases: its creator may, and so may whoever
    /// may change the room's canonical alias (Synapse's "room admins").
    /// When it was the room's canonical or an alternative alias, the
    /// remover also clears it there if their power allows, as Synapse does.
    pub async fn remove_alias(&self, alias: &RoomAliasId, user: &UserId) -> Result<()> {
        let record = self
            .aliases
            .get(alias)?
            .ok_or_else(|| Error::not_found(format!("no alias {alias}")))?;
        let room = &record.room_id;
        let admin = self.rooms.is_known(room)?
            && self
                .rooms
                .power_levels(room)?
                .user_can_send_state(user, StateEventType::RoomCanonicalAlias);
        if record.creator != user && !admin {
            return Err(Error::forbidden(format!(
                "only {} or the room's admins may remove {alias}",
                record.creator
            )));
        }
        self.aliases.remove(alias)?;
        if let Err(e) = self.drop_from_canonical(room, alias, user).await {
            tracing::info!(%alias, error = %e.message, "canonical alias left as it was");
        }
        Ok(())
    }

    /// Rewrites the room's `m.room.canonical_alias` without `alias`.
    async fn drop_from_canonical(
        &self,
        room: &RoomId,
        alias: &RoomAliasId,
        user: &UserId,
    ) -> Result<()> {
        let Some((_, event)) =
            self.rooms
                .state_event(room, &StateEventType::RoomCanonicalAlias, "")?
        else {
            return Ok(());
        };
        let mut content: Value = event.get("content").cloned().map_or(json!({}), Value::from);
        let mut changed = false;
        if content["alias"] == alias.as_str() {
            content.as_object_mut().map(|c| c.remove("alias"));
            changed = true;
        }
        if let Some(alt) = content["alt_aliases"].as_array_mut() {
            let before = alt.len();
            alt.retain(|a| a != alias.as_str());
            changed |= alt.len() != before;
        }
        if changed {
            self.rooms
                .send(room, user, "m.room.canonical_alias", Some(""), content)
                .await?;
        }
        Ok(())
    }

    /// Refuses an `m.room.canonical_alias` naming an alias that does not
    /// point to the room (400 `M_BAD_ALIAS`), as `alias` or among
    /// `alt_aliases`. Spec: client-server-api "m.room.canonical_alias".
    pub async fn check_canonical_alias(&self, room: &RoomId, content: &Value) -> Result<()> {
        let mut named = Vec::new();
        match &content["alias"] {
            Value::Null => {}
            Value::String(alias) => named.push(alias.clone()),
            _ => return Err(Error::bad_json("alias must be a string")),
        }
        match &content["alt_aliases"] {
            Value::Null => {}
            Value::Array(alt) if alt.len() <= MAX_ALT_ALIASES => {
                for alias in alt {
                    let alias = alias
                        .as_str()
                        .ok_or_else(|| Error::bad_json("alt_aliases holds strings"))?;
                    named.push(alias.to_owned());
                }
            }
            _ => {
                return Err(Error::bad_json(
                    "alt_aliases must be a list of at most 50 aliases",
                ))
            }
        }
        for alias in named {
            let alias: OwnedRoomAliasId = crate::request::parsed("alias", &alias)?;
            let points_here = self.resolve(&alias).await.is_ok_and(|r| r.room_id == room);
            if !points_here {
                return Err(Error::new(
                    http::StatusCode::BAD_REQUEST,
                    "M_BAD_ALIAS",
                    format!("{alias} does not point to {room}"),
                ));
            }
        }
        Ok(())
    }

    /// A room upgrade's move: our aliases of `old` now point at `new`,
    /// its canonical alias moves with them, and so does its place in our
    /// public list. Spec: client-server-api "Room Upgrades", step 4.
    pub async fn move_to(&self, old: &RoomId, new: &RoomId, user: &UserId) -> Result<()> {
        for alias in self.aliases.of_room(old)? {
            let Ok(alias) = OwnedRoomAliasId::try_from(alias) else {
                continue;
            };
            if let Some(record) = self.aliases.get(&alias)? {
                self.aliases.remove(&alias)?;
                let moved = AliasRecord {
                    room_id: new.to_owned(),
                    creator: record.creator,
                };
                self.aliases.create(&alias, &moved)?;
            }
        }
        let canonical = self
            .rooms
            .state_event(old, &StateEventType::RoomCanonicalAlias, "")?
            .and_then(|(_, pdu)| pdu.get("content").cloned())
            .map(Value::from)
            .filter(|content| content.as_object().is_some_and(|c| !c.is_empty()));
        if let Some(content) = canonical {
            self.rooms
                .send(new, user, "m.room.canonical_alias", Some(""), content)
                .await?;
            self.rooms
                .send(old, user, "m.room.canonical_alias", Some(""), json!({}))
                .await?;
        }
        if self.public.contains(old)? {
            self.public.set(new, true)?;
            self.public.set(old, false)?;
        }
        Ok(())
    }

    /// Our aliases pointing at a room.
    pub fn aliases_of(&self, room: &RoomId) -> Result<Vec<String>> {
        Ok(self.aliases.of_room(room)?)
    }

    /// One of our aliases, as we answer other servers.
    pub fn resolve_local(&self, alias: &RoomAliasId) -> Result<Resolved> {
        let record = self
            .aliases
            .get(alias)?
            .ok_or_else(|| Error::not_found(format!("no alias {alias}")))?;
        let own = self.rooms.server_name().to_owned();
        let mut servers: Vec<OwnedServerName> = self
            .rooms
            .joined_servers(&record.room_id)
            .unwrap_or_default()
            .into_iter()
            .filter(|s| *s != own)
            .collect();
        servers.insert(0, own);
        Ok(Resolved {
            room_id: record.room_id,
            servers,
        })
    }

    /// Any alias: ours from the tree, others' from their server.
    pub async fn resolve(&self, alias: &RoomAliasId) -> Result<Resolved> {
        if alias.server_name() == self.rooms.server_name() {
            return self.resolve_local(alias);
        }
        self.peers.query_directory(alias).await
    }

    /// Publishes or hides a room in our public list; the user must be in it.
    pub fn set_public(&self, room: &RoomId, user: &UserId, public: bool) -> Result<()> {
        if self.rooms.membership_of(room, user)? != Some(MembershipState::Join) {
            return Err(Error::forbidden(format!("{user} is not in {room}")));
        }
        Ok(self.public.set(room, public)?)
    }

    pub fn is_public(&self, room: &RoomId) -> Result<bool> {
        Ok(self.public.contains(room)?)
    }

    /// A page of our public rooms, largest first, optionally filtered by
    /// a search term on name, topic and alias. `since` is an offset token.
    /// Spec: client-server-api "Listing rooms", server-server-api.md "Public Room Directory".
    pub fn public_rooms(
        &self,
        limit: Option<usize>,
        since: Option<&str>,
        term: Option<&str>,
    ) -> Result<Value> {
        let term = term.map(str::to_lowercase).filter(|t| !t.is_empty());
        let mut rooms = Vec::new();
        for room in self.public.all()? {
            let Ok(summary) = self.summary(&room) else {
                continue;
            };
            let matches = term.as_ref().is_none_or(|t| {
                ["name", "topic", "canonical_alias"].iter().any(|f| {
                    summary[f]
                        .as_str()
                        .is_some_and(|v| v.to_lowercase().contains(t))
                })
            });
            if matches {
                rooms.push(summary);
            }
        }
        rooms.sort_by_key(|r| std::cmp::Reverse(r["num_joined_members"].as_u64().unwrap_or(0)));
        let total = rooms.len();
        let start = match since {
            Some(token) => token
                .strip_prefix('o')
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| {
                    Error::invalid_param(format!("{token:?} is not a directory token"))
                })?,
            None => 0,
        };
        let limit = limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
        let page: Vec<Value> = rooms.into_iter().skip(start).take(limit).collect();
        let mut answer = json!({ "chunk": page, "total_room_count_estimate": total });
        if start + limit < total {
            answer["next_batch"] = json!(format!("o{}", start + limit));
        }
        if start > 0 {
            answer["prev_batch"] = json!(format!("o{}", start.saturating_sub(limit)));
        }
        Ok(answer)
    }

    /// Another server's public rooms.
    pub async fn remote_public_rooms(
        &self,
        server: &ruma::ServerName,
        body: &Value,
    ) -> Result<Value> {
        self.peers.public_rooms(server, body).await
    }

    /// What the public room list shows of a room, from its current state.
    pub fn summary(&self, room: &RoomId) -> Result<Value> {
        let content = |kind: &str| -> Result<Value> {
            Ok(self
                .rooms
                .state_event(room, &kind.into(), "")?
                .and_then(|(_, pdu)| pdu.get("content").cloned())
                .map(Into::into)
                .unwrap_or(Value::Null))
        };
        let mut joined = 0u64;
        for ((kind, key), _) in self.rooms.current_state_ids(room)? {
            if kind == StateEventType::RoomMember {
                if let Ok(user) = <&UserId>::try_from(key.as_str()) {
                    if self.rooms.membership_of(room, user)? == Some(MembershipState::Join) {
                        joined += 1;
                    }
                }
            }
        }
        let mut summary = json!({
            "room_id": room,
            "num_joined_members": joined,
            "world_readable": content("m.room.history_visibility")?["history_visibility"] == "world_readable",
            "guest_can_join": content("m.room.guest_access")?["guest_access"] == "can_join",
            "join_rule": content("m.room.join_rules")?["join_rule"].as_str().unwrap_or("invite"),
        });
        for (field, kind, key) in [
            ("name", "m.room.name", "name"),
            ("topic", "m.room.topic", "topic"),
            ("canonical_alias", "m.room.canonical_alias", "alias"),
            ("avatar_url", "m.room.avatar", "url"),
            ("room_type", "m.room.create", "type"),
        ] {
            if let Some(value) = content(kind)?[key].as_str() {
                summary[field] = json!(value);
            }
        }
        Ok(summary)
    }
}
