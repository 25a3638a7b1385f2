//! Simplified sliding sync (MSC4186), what Element X speaks:
//! `POST /_matrix/client/unstable/org.matrix.simplified_msc3575/sync`.
//! The room list comes from the per-user room index the classic `/sync`
//! reads too (`rooms/activity.rs`), so that an answer costs the rooms in
//! its windows that changed, not every room of the user; each connection's
//! state (`connection.rs`) says what it was sent.
//! Request and answer are ruma's types (`unstable-msc4186`), as the
//! client's own (matrix-rust-sdk); the filters MSC4186 added since
//! (`spaces`, `tags`, `not_tags`) are read beside them.
//! Spec: MSC4186; extensions MSC3884, MSC3885, MSC3959, MSC3960, MSC3961.

mod connection;
mod extensions;
mod lists;
mod room;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use ruma::{
    api::client::sync::sync_events::v5::{self, response},
    OwnedRoomId,
};
use serde::{Deserialize, Serialize};

pub(super) use connection::Connections;
use connection::{ConnKey, Sent};
use lists::Marks;
use room::Answer;

use super::{SyncService, Token, MAX_TIMEOUT};
use crate::{error::Result, store::accounts::Session};

/// A sliding sync answer: ruma's v5 response (whose type is not
/// `Serialize`) with what its room type lacks.
#[derive(Serialize)]
pub struct SlidingResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub txn_id: Option<String>,
    pub pos: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub lists: BTreeMap<String, response::List>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub rooms: BTreeMap<OwnedRoomId, RoomResponse>,
    #[serde(skip_serializing_if = "response::Extensions::is_empty")]
    pub extensions: response::Extensions,
}

/// One room of an answer: ruma's, and `expanded_timeline` (MSC4186): the
/// timeline is the room's latest events, not what came since it was last
/// sent, because the room is now asked with a larger timeline limit.
#[derive(Serialize)]
pub struct RoomResponse {
    #[serde(flatten)]
    pub room: response::Room,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub expanded_timeline: bool,
}

/// What ruma's request type does not hold: the list filters MSC4186
/// added after it (`spaces`, `tags`, `not_tags`).
#[derive(Deserialize, Default)]
pub struct ListExtras {
    #[serde(default)]
    lists: BTreeMap<String, ExtraList>,
}

#[derive(Deserialize, Default)]
struct ExtraList {
    #[serde(default)]
    filters: Option<ExtraFilters>,
}

#[derive(Deserialize, Default)]
struct ExtraFilters {
    #[serde(default)]
    spaces: Vec<OwnedRoomId>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    not_tags: Vec<String>,
}

impl ListExtras {
    fn filters_of(&self, list: &str) -> Option<&ExtraFilters> {
        self.lists.get(list).and_then(|l| l.filters.as_ref())
    }
}

impl SyncService {
    /// Answers at once on a connection's first request or when anything
    /// changed for it, else when something does or the timeout passes.
    pub async fn sliding_sync(
        &self,
        session: &Session,
        request: v5::Request,
        extras: ListExtras,
    ) -> Result<SlidingResponse> {
        let key = ConnKey::of(session, request.conn_id.as_deref())?;
        let base = match &request.pos {
            Some(pos) => self.connections.base(&key, pos)?,
            None => Arc::new(Sent::default()),
        };
        let timeout = request.timeout.unwrap_or(Duration::ZERO).min(MAX_TIMEOUT);
        let deadline = tokio::time::Instant::now() + timeout;
        let mut positions = self.rooms.watch_position();
        let mut ephemeral = self.edus.watch();
        loop {
            positions.borrow_and_update();
            ephemeral.borrow_and_update();
            let (mut response, sent, news) =
                self.sliding_pass(session, &request, &extras, &base)?;
            let waited_enough = tokio::time::Instant::now() >= deadline;
            if news || request.pos.is_none() || waited_enough {
                response.pos = self.connections.commit(&key, sent, request.pos.is_some());
                return Ok(response);
            }
            tokio::select! {
                _ = positions.changed() => {}
                _ = ephemeral.changed() => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    /// One answer, what the connection will then have been sent, and
    /// whether it holds anything new.
    fn sliding_pass(
        &self,
        session: &Session,
        request: &v5::Request,
        extras: &ListExtras,
        base: &Sent,
    ) -> Result<(SlidingResponse, Sent, bool)> {
        let user = &session.user_id;
        let now = Token {
            position: self.rooms.position(),
            ephemeral: self.edus.version(),
            to_device: 0,
        };
        let data = self.accounts.account_data_of(user)?;
        let marks = Marks::of(&data);
        let candidates = self.candidates(user, base)?;
        let selection = self.select(request, extras, &candidates, &marks)?;
        let mut sent = base.clone();
        sent.token = Some(now);
        let mut response = SlidingResponse {
            txn_id: request.txn_id.clone(),
            pos: String::new(),
            lists: BTreeMap::new(),
            rooms: BTreeMap::new(),
            extensions: response::Extensions::default(),
        };
        for (name, count) in &selection.counts {
            let mut list = response::List::default();
            list.count = ruma::UInt::try_from(*count as u64).unwrap_or_default();
            response.lists.insert(name.clone(), list);
        }
        let mut news = false;
        for (candidate, wanted) in candidates.iter().zip(&selection.rooms) {
            let Some(wanted) = wanted else {
                continue;
            };
            let answer = Answer {
                user,
                device: session.device_id.as_str(),
                now,
                base: base.token,
                is_dm: marks.direct.contains(&candidate.room),
            };
            if let Some(room) = self.sliding_room(&answer, candidate, wanted, &mut sent)? {
                response.rooms.insert(candidate.room.clone(), room);
                news = true;
            }
        }
        let answer = Answer {
            user,
            device: session.device_id.as_str(),
            now,
            base: base.token,
            is_dm: false,
        };
        let (extensions, extension_news) =
            self.extensions(request, &answer, (&candidates, &selection), &data)?;
        response.extensions = extensions;
        Ok((response, sent, news || extension_news))
    }

    /// Forgets the sliding sync connections of a removed device.
    pub fn device_removed(&self, user: &ruma::UserId, device: &str) {
        self.connections.drop_device(user, device);
    }
}
