//! Room tags (favourites, low priority, the user's own): kept as the
//! room's `m.tag` account data, so `/sync` delivers them with it.
//! Spec: client-server-api "Room Tagging".

use ruma::{RoomId, UserId};
use serde_json::{json, Map, Value};

use super::AccountService;
use crate::{
    error::{Error, Result},
    request::at_most,
    rooms::RoomService,
};

/// The account data type tags live in.
const TAGS: &str = "m.tag";
/// A tag's name, and how many one room may have.
const MAX_TAG_BYTES: usize = 255;
const MAX_TAGS: usize = 100;

/// One read-change-write of a room's tags at a time.
static CHANGING: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl AccountService {
    /// `{"tags": {...}}` for `room` (empty when it has none).
    pub fn tags(&self, user: &UserId, room: &RoomId) -> Result<Value> {
        let tags = self.tag_map(user, room)?;
        Ok(json!({ "tags": tags }))
    }

    fn tag_map(&self, user: &UserId, room: &RoomId) -> Result<Map<String, Value>> {
        Ok(self
            .trees
            .account_data(user, Some(room.as_str()), TAGS)?
            .and_then(|data| data.content.get("tags")?.as_object().cloned())
            .unwrap_or_default())
    }

    /// Adds or replaces `tag` on `room`; `content` may hold an `order`
    /// between 0 and 1.
    pub fn put_tag(
        &self,
        rooms: &RoomService,
        user: &UserId,
        room: &RoomId,
        tag: &str,
        content: Map<String, Value>,
    ) -> Result<()> {
        at_most("tag", tag, MAX_TAG_BYTES)?;
        if tag.is_empty() {
            return Err(Error::invalid_param("a tag needs a name"));
        }
        let order = content.get("order");
        if order.is_some_and(|o| !o.as_f64().is_some_and(|o| (0.0..=1.0).contains(&o))) {
            return Err(Error::bad_json("order must be a number from 0 to 1"));
        }
        let _one = CHANGING.lock().unwrap_or_else(|e| e.into_inner());
        let mut tags = self.tag_map(user, room)?;
        if !tags.contains_key(tag) && tags.len() >= MAX_TAGS {
            return Err(Error::new(
                http::StatusCode::BAD_REQUEST,
                "M_LIMIT_EXCEEDED",
                format!("a room may have at most {MAX_TAGS} tags"),
            ));
        }
        tags.insert(tag.to_owned(), Value::Object(content));
        self.set_account_data(
            rooms,
            user,
            Some(room.as_str()),
            TAGS,
            json!({ "tags": tags }),
        )
    }

    /// Removes `tag` from `room` (done already when it is not there).
    pub fn delete_tag(
        &self,
        rooms: &RoomService,
        user: &UserId,
        room: &RoomId,
        tag: &str,
    ) -> Result<()> {
        let _one = CHANGING.lock().unwrap_or_else(|e| e.into_inner());
        let mut tags = self.tag_map(user, room)?;
        if tags.remove(tag).is_none() {
            return Ok(());
        }
        self.set_account_data(
            rooms,
            user,
            Some(room.as_str()),
            TAGS,
            json!({ "tags": tags }),
        )
    }

    /// What follows a user from an upgraded room to its replacement: tags
    /// and push rules. Spec: client-server-api "Room Upgrades".
    pub fn carry_over_room(
        &self,
        rooms: &RoomService,
        user: &UserId,
        old: &RoomId,
        new: &RoomId,
    ) -> Result<()> {
        self.copy_room_tags(rooms, user, old, new)?;
        super::push_rules::copy_room_push_rules(self, rooms, user, old, new)
    }

    /// A room upgrade's tags: the old room's, on the replacement, unless
    /// the user has tagged that already.
    fn copy_room_tags(
        &self,
        rooms: &RoomService,
        user: &UserId,
        old: &RoomId,
        new: &RoomId,
    ) -> Result<()> {
        let _one = CHANGING.lock().unwrap_or_else(|e| e.into_inner());
        let tags = self.tag_map(user, old)?;
        if tags.is_empty() || !self.tag_map(user, new)?.is_empty() {
            return Ok(());
        }
        self.set_account_data(
            rooms,
            user,
            Some(new.as_str()),
            TAGS,
            json!({ "tags": tags }),
        )
    }
}
