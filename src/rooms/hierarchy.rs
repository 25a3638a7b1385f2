//! Spaces: a room's `m.space.child` tree, summarised room by room, for
//! our clients (walking rooms we hold, asking other servers for those we
//! do not) and for other servers (one level, the rooms we hold).
//! Spec: client-server-api "Spaces"; server-server-api.md "Spaces";
//! space_hierarchy.yaml.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::Arc,
};

use ruma::{
    events::{room::member::MembershipState, StateEventType},
    OwnedRoomId, OwnedServerName, RoomId, ServerName, UserId,
};
use serde_json::{json, Value};

use super::{directory::DirectoryService, RoomService};
use crate::{
    error::{Error, Result},
    peers::Peers,
};

/// Rooms in one page of a client's walk.
pub const MAX_PAGE: usize = 100;
/// How deep a client's walk goes at most.
pub const MAX_DEPTH: usize = 10;
/// Servers a room summary asks at most.
const MAX_VIA: usize = 5;
/// Rooms a walk visits at most, whatever the pages.
const MAX_VISITED: usize = 1000;

/// Who asks: decides which rooms count as reachable.
#[derive(Clone, Copy)]
pub enum Asker<'a> {
    User(&'a UserId),
    Server(&'a ServerName),
}

/// What a client asked for.
pub struct Walk {
    pub suggested_only: bool,
    pub max_depth: usize,
    pub limit: usize,
    pub from: usize,
}

pub struct HierarchyService {
    rooms: Arc<RoomService>,
    directory: Arc<DirectoryService>,
    peers: Arc<Peers>,
}

impl HierarchyService {
    pub fn new(
        rooms: Arc<RoomService>,
        directory: Arc<DirectoryService>,
        peers: Arc<Peers>,
    ) -> Self {
        Self {
            rooms,
            directory,
            peers,
        }
    }

    /// The federation answer: the room and its children we hold, those
    /// `server` could not join listed as inaccessible. 404 when the room
    /// is unknown or not reachable for `server`.
    pub fn for_server(
        &self,
        room: &RoomId,
        server: &ServerName,
        suggested_only: bool,
    ) -> Result<Value> {
        let asker = Asker::Server(server);
        if !self.reachable(room, asker)? {
            return Err(Error::not_found(format!("no space {room} for {server}")));
        }
        let entry = self.entry(room, suggested_only)?;
        let mut children = Vec::new();
        let mut inaccessible = Vec::new();
        for (child, _) in child_links(&entry) {
            if self.rooms.version_of(&child).is_err() {
                continue;
            }
            if self.reachable(&child, asker)? {
                children.push(self.entry(&child, suggested_only)?);
            } else {
                inaccessible.push(child);
            }
        }
        Ok(json!({"room": entry, "children": children, "inaccessible_children": inaccessible}))
    }

    /// A client's page of the tree under `root`, breadth first; rooms we
    /// do not hold are asked of the servers their parent names.
    pub async fn for_user(&self, root: &RoomId, user: &UserId, walk: &Walk) -> Result<Value> {
        let asker = Asker::User(user);
        // A root we do not hold is asked of the server in its ID (before v12).
        let via: Vec<OwnedServerName> = root
            .server_name()
            .map(ToOwned::to_owned)
            .into_iter()
            .collect();
        let mut queue: VecDeque<(OwnedRoomId, usize, Vec<OwnedServerName>)> =
            VecDeque::from([(root.to_owned(), 0, via)]);
        let mut seen: HashSet<OwnedRoomId> = HashSet::from([root.to_owned()]);
        let mut rooms = Vec::new();
        let mut index = 0;
        // Entries other servers already sent along with a parent.
        let mut fetched: HashMap<OwnedRoomId, Value> = HashMap::new();
        while let Some((room, depth, via)) = queue.pop_front() {
            let entry = match fetched.remove(&room) {
                Some(entry) => Some(entry),
                None => {
                    self.entry_for(&room, asker, &via, walk.suggested_only, &mut fetched)
                        .await
                }
            };
            let Some(entry) = entry else {
                continue;
            };
            if depth < walk.max_depth {
                for (child, servers) in child_links(&entry) {
                    if seen.insert(child.clone()) {
                        queue.push_back((child, depth + 1, servers));
                    }
                }
            }
            if index >= walk.from {
                rooms.push(entry);
            }
            index += 1;
            if rooms.len() >= walk.limit || seen.len() > MAX_VISITED {
                break;
            }
        }
        if index == 0 {
            return Err(Error::forbidden(format!("{user} cannot see {root}")));
        }
        let mut answer = json!({ "rooms": rooms });
        if !queue.is_empty() {
            answer["next_batch"] = json!(format!("h{index}"));
        }
        Ok(answer)
    }

    /// A room's summary for `user` (`room_summary`): ours if we hold it
    /// and they could join or peek, else from the first of `via` that
    /// answers; with their membership, if they have one.
    /// Spec: client-server-api "GET /_matrix/client/v1/room_summary".
    pub async fn room_summary(
        &self,
        room: &RoomId,
        user: &UserId,
        via: &[OwnedServerName],
    ) -> Result<Value> {
        // Each server named may cost a request: a user names a few.
        let via = &via[..via.len().min(MAX_VIA)];
        let mut entry = self
            .entry_for(room, Asker::User(user), via, false, &mut HashMap::new())
            .await
            .ok_or_else(|| Error::not_found("Room not found."))?;
        if let Value::Object(fields) = &mut entry {
            fields.remove("children_state");
        }
        if let Some(membership) = self.rooms.membership_of(room, user).ok().flatten() {
            entry["membership"] = json!(membership.as_str());
        }
        Ok(entry)
    }

    /// A room's entry for a client: ours if we hold it (and the user may
    /// see it), else from the first of `via` that answers.
    pub(in crate::rooms) async fn entry_for(
        &self,
        room: &RoomId,
        asker: Asker<'_>,
        via: &[OwnedServerName],
        suggested_only: bool,
        fetched: &mut HashMap<OwnedRoomId, Value>,
    ) -> Option<Value> {
        if self.rooms.version_of(room).is_ok() {
            return match self.reachable(room, asker) {
                Ok(true) => self.entry(room, suggested_only).ok(),
                _ => None,
            };
        }
        let own = self.rooms.server_name();
        for server in via.iter().filter(|s| s.as_str() != own.as_str()) {
            match self.peers.hierarchy(server, room, suggested_only).await {
                Ok(answer) if answer.room["room_id"] == room.as_str() => {
                    for child in answer.children {
                        if let Some(id) = child["room_id"]
                            .as_str()
                            .and_then(|id| OwnedRoomId::try_from(id).ok())
                        {
                            fetched.insert(id, child);
                        }
                    }
                    return Some(answer.room);
                }
                Ok(_) => {}
                Err(e) => tracing::info!(%room, %server, error = %e, "hierarchy request failed"),
            }
        }
        None
    }

    /// Whether the asker could join or peek: public, knockable, restricted
    /// or world-readable rooms, or a membership (joined or invited) of the
    /// user or of one of the server's users.
    pub(in crate::rooms) fn reachable(&self, room: &RoomId, asker: Asker<'_>) -> Result<bool> {
        let summary = self.directory.summary(room)?;
        let open = matches!(
            summary["join_rule"].as_str(),
            Some("public" | "knock" | "restricted" | "knock_restricted")
        ) || summary["world_readable"] == true;
        if open {
            return Ok(true);
        }
        let member = |state| matches!(state, Some(MembershipState::Join | MembershipState::Invite));
        match asker {
            Asker::User(user) => Ok(member(self.rooms.membership_of(room, user)?)),
            Asker::Server(server) => {
                Ok(self.rooms.joined_servers(room)?.iter().any(|s| s == server))
            }
        }
    }

    /// The room's summary with what spaces add: its children, version,
    /// encryption and the rooms a restricted join rule allows.
    pub(in crate::rooms) fn entry(&self, room: &RoomId, suggested_only: bool) -> Result<Value> {
        let mut entry = self.directory.summary(room)?;
        let mut children = Vec::new();
        for ((kind, key), id) in self.rooms.current_state_ids(room)? {
            if kind != StateEventType::SpaceChild {
                continue;
            }
            let event: Value =
                ruma::CanonicalJsonValue::Object(self.rooms.event_object(&id)?).into();
            let content = &event["content"];
            let linked = content["via"].as_array().is_some_and(|v| !v.is_empty());
            if !linked || (suggested_only && content["suggested"] != true) {
                continue;
            }
            children.push(json!({
                "type": "m.space.child", "state_key": key, "content": content,
                "sender": event["sender"], "origin_server_ts": event["origin_server_ts"],
            }));
        }
        entry["children_state"] = json!(children);
        entry["room_version"] = json!(self.rooms.version_of(room)?.as_str());
        let content = |kind: StateEventType| -> Result<Value> {
            Ok(self
                .rooms
                .state_event(room, &kind, "")?
                .and_then(|(_, e)| e.get("content").cloned())
                .map_or(Value::Null, Value::from))
        };
        if let Some(algorithm) = content(StateEventType::RoomEncryption)?["algorithm"].as_str() {
            entry["encryption"] = json!(algorithm);
        }
        let allowed: Vec<Value> = content(StateEventType::RoomJoinRules)?["allow"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["type"] == "m.room_membership")
            .filter_map(|a| a.get("room_id").cloned())
            .collect();
        entry["allowed_room_ids"] = json!(allowed);
        Ok(entry)
    }
}

/// The children an entry links to, with the servers to reach each.
fn child_links(entry: &Value) -> Vec<(OwnedRoomId, Vec<OwnedServerName>)> {
    entry["children_state"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|child| {
            let room = OwnedRoomId::try_from(child["state_key"].as_str()?).ok()?;
            let via = child["content"]["via"]
                .as_array()?
                .iter()
                .filter_map(|s| OwnedServerName::try_from(s.as_str()?).ok())
                .collect();
            Some((room, via))
        })
        .collect()
}
