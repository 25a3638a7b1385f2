//! What a relation a local user sends must satisfy, before it is sent:
//! a thread starts from an event that relates to nothing (400
//! `M_UNKNOWN`, as the spec asks), a user reacts with a given key once
//! (400 `M_DUPLICATE_ANNOTATION`), and a known parent is in the same room.
//! Spec: client-server-api "Validation of `m.thread` relationships",
//! "Avoiding duplicate annotations".

use ruma::{RoomId, UserId};
use serde_json::Value;

use crate::{
    error::{Error, Result},
    rooms::RoomService,
    store::rooms::relations::THREAD,
};

/// Children of one parent read at most for a duplicate annotation.
const MAX_READ: usize = 10_000;

impl RoomService {
    /// Checks the relation `content` states, if any, for an event of
    /// type `kind` that `sender` is about to send in `room`.
    pub fn check_new_relation(
        &self,
        room: &RoomId,
        sender: &UserId,
        kind: &str,
        content: &Value,
    ) -> Result<()> {
        let relates = &content["m.relates_to"];
        let (Some(rel_type), Some(parent)) =
            (relates["rel_type"].as_str(), relates["event_id"].as_str())
        else {
            return Ok(());
        };
        let parent: ruma::OwnedEventId = crate::request::parsed("m.relates_to.event_id", parent)?;
        let Some(meta) = self.trees.event_meta(parent.as_str())? else {
            // Not known here (history not fetched yet): other servers
            // judge it as they receive it.
            return Ok(());
        };
        if meta.room_id != room {
            return Err(Error::bad_json(
                "a relation's parent must be in the same room",
            ));
        }
        match rel_type {
            THREAD => {
                let parent = self.event_object(&parent)?;
                let related = matches!(
                    parent.get("content"),
                    Some(ruma::CanonicalJsonValue::Object(c))
                        if matches!(c.get("m.relates_to"), Some(ruma::CanonicalJsonValue::Object(r)) if r.contains_key("rel_type"))
                );
                if related {
                    return Err(Error::new(
                        http::StatusCode::BAD_REQUEST,
                        "M_UNKNOWN",
                        "a thread cannot start from an event that relates to another",
                    ));
                }
            }
            "m.annotation" => self.check_annotation(room, &parent, sender, kind, relates)?,
            _ => {}
        }
        Ok(())
    }

    fn check_annotation(
        &self,
        room: &RoomId,
        parent: &ruma::EventId,
        sender: &UserId,
        kind: &str,
        relates: &Value,
    ) -> Result<()> {
        let Some(key) = relates["key"].as_str() else {
            return Ok(());
        };
        let mut duplicate = false;
        let mut read = 0;
        self.trees.walk_children::<Error>(
            room.as_str(),
            parent.as_str(),
            None,
            false,
            |child| {
                read += 1;
                let relation = child.relation;
                duplicate = relation.rel_type == "m.annotation"
                    && relation.sender == sender.as_str()
                    && relation.event_type == kind
                    && relation.key.as_deref() == Some(key);
                Ok(!duplicate && read < MAX_READ)
            },
        )?;
        if duplicate {
            return Err(Error::new(
                http::StatusCode::BAD_REQUEST,
                "M_DUPLICATE_ANNOTATION",
                format!("{sender} already annotated {parent} with this key"),
            ));
        }
        Ok(())
    }
}
