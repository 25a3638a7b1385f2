//! Bundled aggregations: `unsigned.m.relations` of an event as a client
//! reads it: `m.thread` (the latest reply, the count, whether the reader
//! took part), `m.reference` (the referring events' IDs) and `m.replace`
//! (the most recent valid edit, whole; the original's content is left as
//! it is, as spec v1.7 asks). Annotations are not aggregated.
//! Spec: client-server-api "Aggregations of child events" and each
//! relation type's "Server-side aggregation".

use ruma::{CanonicalJsonValue, EventId, RoomId, UserId};
use serde_json::{json, Map, Value};

use crate::{
    error::{Error, Result},
    rooms::{client_event::client_event, reads::access::ReadAccess, RoomService},
    store::rooms::relations::THREAD,
};

/// Children read per parent at most: a parent with more (reactions,
/// mostly) gets aggregations of the newest, and a thread count that is
/// a lower bound, which the spec allows ("approximate").
const MAX_CHILDREN: usize = 10_000;
/// References listed at most, newest first.
const MAX_REFERENCES: usize = 100;
/// Newest thread replies tried for a `latest_event` the reader may see.
const LATEST_TRIED: usize = 16;

/// Bundles aggregations into the events one reader reads in one room.
pub struct Bundler<'a> {
    rooms: &'a RoomService,
    room: &'a RoomId,
    user: &'a UserId,
    access: &'a ReadAccess,
}

/// What a parent's children add up to.
#[derive(Default)]
struct Children {
    thread_newest: Vec<ruma::OwnedEventId>,
    thread_count: u64,
    participated: bool,
    references: Vec<ruma::OwnedEventId>,
    edits: Vec<ruma::OwnedEventId>,
}

impl<'a> Bundler<'a> {
    pub fn new(
        rooms: &'a RoomService,
        room: &'a RoomId,
        user: &'a UserId,
        access: &'a ReadAccess,
    ) -> Self {
        Self {
            rooms,
            room,
            user,
            access,
        }
    }

    /// Adds `unsigned.m.relations` to a client event that has children
    /// to aggregate; state events get none (the spec leaves them out).
    pub fn bundle(&self, event: &mut Value) -> Result<()> {
        self.bundle_at(event, true)
    }

    /// Several events; all or nothing.
    pub fn bundle_all<'e>(&self, events: impl IntoIterator<Item = &'e mut Value>) -> Result<()> {
        events.into_iter().try_for_each(|event| self.bundle(event))
    }

    /// `threads`: whether a thread's aggregation is wanted (not inside a
    /// thread's own `latest_event`, which cannot be a root).
    fn bundle_at(&self, event: &mut Value, threads: bool) -> Result<()> {
        if event.get("state_key").is_some() {
            return Ok(());
        }
        let (Some(id), Some(sender), Some(kind)) = (
            event["event_id"]
                .as_str()
                .and_then(|id| EventId::parse(id).ok()),
            event["sender"].as_str(),
            event["type"].as_str(),
        ) else {
            return Ok(());
        };
        let redacted = event["unsigned"].get("redacted_because").is_some();
        // An edit cannot be edited; a redacted original bundles no edits.
        let editable = !redacted && event["content"]["m.relates_to"]["rel_type"] != "m.replace";
        let children = self.children(&id, sender, kind, editable)?;
        let mut relations = Map::new();
        if threads && children.thread_count > 0 {
            if let Some(thread) = self.thread(&children, sender, event.get("room_id").is_some())? {
                relations.insert(THREAD.into(), thread);
            }
        }
        let references = self.readable(&children.references)?;
        if !references.is_empty() {
            let chunk: Vec<Value> = references
                .iter()
                .map(|id| json!({ "event_id": id }))
                .collect();
            relations.insert("m.reference".into(), json!({ "chunk": chunk }));
        }
        if let Some(edit) =
            self.latest_edit(&children.edits, kind, event.get("room_id").is_some())?
        {
            relations.insert("m.replace".into(), edit);
        }
        if relations.is_empty() {
            return Ok(());
        }
        if !event["unsigned"].is_object() {
            event["unsigned"] = Value::Object(Map::new());
        }
        event["unsigned"]["m.relations"] = Value::Object(relations);
        Ok(())
    }

    /// Reads the parent's children once, newest first.
    fn children(
        &self,
        parent: &EventId,
        sender: &str,
        kind: &str,
        editable: bool,
    ) -> Result<Children> {
        let mut children = Children::default();
        let mut read = 0;
        let user = self.user.as_str();
        self.rooms.trees.walk_children::<Error>(
            self.room.as_str(),
            parent.as_str(),
            None,
            true,
            |child| {
                read += 1;
                let relation = &child.relation;
                match relation.rel_type.as_str() {
                    THREAD => {
                        children.thread_count += 1;
                        children.participated |= relation.sender == user;
                        if children.thread_newest.len() < LATEST_TRIED {
                            children.thread_newest.push(child.id);
                        }
                    }
                    "m.reference" if children.references.len() < MAX_REFERENCES => {
                        children.references.push(child.id);
                    }
                    "m.replace"
                        if editable && relation.sender == sender && relation.event_type == kind =>
                    {
                        children.edits.push(child.id);
                    }
                    _ => {}
                }
                Ok(read < MAX_CHILDREN)
            },
        )?;
        Ok(children)
    }

    fn readable(&self, ids: &[ruma::OwnedEventId]) -> Result<Vec<ruma::OwnedEventId>> {
        let mut kept = Vec::with_capacity(ids.len());
        for id in ids {
            if self.rooms.readable_event(id, self.user, self.access)? {
                kept.push(id.clone());
            }
        }
        Ok(kept)
    }

    /// `m.thread`: the newest reply the reader may see, with its own
    /// aggregations.
    fn thread(
        &self,
        children: &Children,
        root_sender: &str,
        room_id: bool,
    ) -> Result<Option<Value>> {
        for id in &children.thread_newest {
            if !self.rooms.readable_event(id, self.user, self.access)? {
                continue;
            }
            let mut latest = client_event(id, &self.rooms.event_object(id)?, room_id);
            self.bundle_at(&mut latest, false)?;
            return Ok(Some(json!({
                "latest_event": latest,
                "count": children.thread_count,
                "current_user_participated":
                    children.participated || root_sender == self.user.as_str(),
            })));
        }
        Ok(None)
    }

    /// `m.replace`: the valid edit with the highest `origin_server_ts`,
    /// then the largest event ID. The index already holds only edits by
    /// the original's sender, of its type; here an edit must carry
    /// `m.new_content` (inside the ciphertext when encrypted, unseen).
    fn latest_edit(
        &self,
        edits: &[ruma::OwnedEventId],
        kind: &str,
        room_id: bool,
    ) -> Result<Option<Value>> {
        let mut best: Option<(i64, &EventId, ruma::CanonicalJsonObject)> = None;
        for id in edits {
            if !self.rooms.readable_event(id, self.user, self.access)? {
                continue;
            }
            let pdu = self.rooms.event_object(id)?;
            let has_new_content = matches!(
                pdu.get("content"),
                Some(CanonicalJsonValue::Object(c)) if c.contains_key("m.new_content")
            );
            if !has_new_content && kind != "m.room.encrypted" {
                continue;
            }
            let ts = match pdu.get("origin_server_ts") {
                Some(CanonicalJsonValue::Integer(ts)) => i64::from(*ts),
                _ => 0,
            };
            if best
                .as_ref()
                .is_none_or(|(t, i, _)| (ts, id.as_ref()) > (*t, *i))
            {
                best = Some((ts, id, pdu));
            }
        }
        Ok(best.map(|(_, id, pdu)| client_event(id, &pdu, room_id)))
    }
}
