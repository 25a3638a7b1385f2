//! `/relations` and `/threads`: pages of the relations index, each event
//! one the reader may see, with its aggregations bundled.

use std::collections::HashSet;

use ruma::{EventId, OwnedEventId, RoomId, UserId};
use serde_json::Value;

use super::Bundler;
use crate::{
    error::{Error, Result},
    rooms::{client_event::client_event, RoomService},
    store::rooms::relations::{Child, Position, THREAD},
};

/// How deep `recurse` follows children of children (Synapse's depth).
const MAX_DEPTH: u8 = 3;
/// Descendants gathered at most for one recursive page.
const MAX_DESCENDANTS: usize = 10_000;
/// Thread replies read at most for one page of threads (replies of
/// threads already listed are passed over).
const MAX_REPLIES_READ: usize = 50_000;

/// `GET /relations/{eventId}[/{relType}[/{eventType}]]`'s parameters.
pub struct RelationsQuery {
    pub rel_type: Option<String>,
    pub event_type: Option<String>,
    pub from: Option<Position>,
    pub to: Option<Position>,
    pub back: bool,
    pub limit: usize,
    pub recurse: bool,
}

pub struct RelationsPage {
    pub chunk: Vec<Value>,
    pub next: Option<Position>,
    /// How deep the server followed children, when asked to recurse.
    pub recursion_depth: Option<u8>,
}

/// `GET /threads`'s parameters.
pub struct ThreadsQuery {
    /// `include=participated`: only threads the reader started or replied in.
    pub participated: bool,
    pub from: Option<Position>,
    pub limit: usize,
}

pub struct ThreadsPage {
    pub chunk: Vec<Value>,
    pub next: Option<Position>,
}

impl RelationsQuery {
    fn wants(&self, child: &Child) -> bool {
        self.rel_type
            .as_ref()
            .is_none_or(|r| *r == child.relation.rel_type)
            && self
                .event_type
                .as_ref()
                .is_none_or(|t| *t == child.relation.event_type)
    }

    /// Whether `position` lies past `to`, where the page must end.
    fn past_end(&self, position: &Position) -> bool {
        self.to.as_ref().is_some_and(|to| {
            if self.back {
                position <= to
            } else {
                position >= to
            }
        })
    }

    fn after_start(&self, position: &Position) -> bool {
        self.from.as_ref().is_none_or(|from| {
            if self.back {
                position < from
            } else {
                position > from
            }
        })
    }
}

impl RoomService {
    /// The children of `parent` (a reader may see it, or it is "not
    /// found"), in the order of the timeline.
    pub fn relations(
        &self,
        room: &RoomId,
        parent: &EventId,
        user: &UserId,
        query: &RelationsQuery,
    ) -> Result<RelationsPage> {
        let access = self.read_access(room, user)?;
        let known = self
            .trees
            .event_meta(parent.as_str())?
            .is_some_and(|m| m.room_id == room);
        if !known || !self.readable_event(parent, user, &access)? {
            return Err(Error::not_found(format!(
                "{parent} is not an event you can see here"
            )));
        }
        let (found, depth, cut) = if query.recurse {
            let (found, depth) = self.descendants(room, parent, query)?;
            (found, depth, false)
        } else {
            let (found, cut) = self.direct_children(room, parent, query)?;
            (found, 1, cut)
        };
        let last_read = found.last().map(|(p, _)| p.clone());
        let mut picked = Vec::new();
        let mut next = None;
        for (position, id) in found {
            if !self.readable_event(&id, user, &access)? {
                continue;
            }
            if picked.len() == query.limit {
                next = picked
                    .last()
                    .map(|(p, _): &(Position, OwnedEventId)| p.clone());
                break;
            }
            picked.push((position, id));
        }
        // The walk stopped early on children the reader may not see.
        if next.is_none() && cut {
            next = last_read;
        }
        let bundler = Bundler::new(self, room, user, &access);
        let mut chunk = Vec::with_capacity(picked.len());
        for (_, id) in &picked {
            let mut event = client_event(id, &self.event_object(id)?, true);
            bundler.bundle(&mut event)?;
            chunk.push(event);
        }
        Ok(RelationsPage {
            chunk,
            next,
            recursion_depth: query.recurse.then_some(depth),
        })
    }

    /// The parent's own children the query wants, in page order, up to a
    /// few more than a page (the reader may not see them all); and
    /// whether the walk stopped there.
    fn direct_children(
        &self,
        room: &RoomId,
        parent: &EventId,
        query: &RelationsQuery,
    ) -> Result<(Vec<(Position, OwnedEventId)>, bool)> {
        let mut found = Vec::new();
        let wanted = query.limit.saturating_mul(2).saturating_add(1);
        self.trees.walk_children::<Error>(
            room.as_str(),
            parent.as_str(),
            query.from.as_ref(),
            query.back,
            |child| {
                let position = (child.stream, child.id.to_string());
                if query.past_end(&position) {
                    return Ok(false);
                }
                if query.wants(&child) {
                    found.push((position, child.id));
                }
                Ok(found.len() < wanted)
            },
        )?;
        let cut = found.len() >= wanted;
        Ok((found, cut))
    }

    /// Children, their children and so on to [`MAX_DEPTH`], in page
    /// order; and the depth reached.
    fn descendants(
        &self,
        room: &RoomId,
        parent: &EventId,
        query: &RelationsQuery,
    ) -> Result<(Vec<(Position, OwnedEventId)>, u8)> {
        let mut all = Vec::new();
        let mut seen: HashSet<OwnedEventId> = HashSet::new();
        let mut level = vec![parent.to_owned()];
        let mut depth = 0;
        while depth < MAX_DEPTH && !level.is_empty() && all.len() < MAX_DESCENDANTS {
            let mut below = Vec::new();
            for id in &level {
                self.trees.walk_children::<Error>(
                    room.as_str(),
                    id.as_str(),
                    None,
                    false,
                    |child| {
                        if seen.insert(child.id.clone()) {
                            below.push(child.id.clone());
                            all.push(child);
                        }
                        Ok(all.len() < MAX_DESCENDANTS)
                    },
                )?;
            }
            if below.is_empty() {
                break;
            }
            depth += 1;
            level = below;
        }
        let mut found: Vec<(Position, OwnedEventId)> = all
            .into_iter()
            .filter(|child| query.wants(child))
            .map(|child| ((child.stream, child.id.to_string()), child.id))
            .filter(|(position, _)| query.after_start(position) && !query.past_end(position))
            .collect();
        found.sort();
        if query.back {
            found.reverse();
        }
        Ok((found, depth.max(1)))
    }

    /// The room's threads, the most recently active first.
    pub fn threads(
        &self,
        room: &RoomId,
        user: &UserId,
        query: &ThreadsQuery,
    ) -> Result<ThreadsPage> {
        let access = self.read_access(room, user)?;
        let mut seen = HashSet::new();
        let mut picked: Vec<(Position, OwnedEventId)> = Vec::new();
        let mut more = false;
        let mut read = 0;
        self.trees.walk_thread_replies::<Error>(
            room.as_str(),
            query.from.as_ref(),
            |stream, root| {
                read += 1;
                if read > MAX_REPLIES_READ {
                    return Ok(false);
                }
                if !seen.insert(root.clone()) {
                    return Ok(true);
                }
                let (latest, participated) =
                    self.thread_activity(room, &root, user, query.participated)?;
                // An older reply of a thread listed on an earlier page.
                if latest != Some(stream) || (query.participated && !participated) {
                    return Ok(true);
                }
                let known = self
                    .trees
                    .event_meta(root.as_str())?
                    .is_some_and(|m| m.room_id == room);
                if !known || !self.readable_event(&root, user, &access)? {
                    return Ok(true);
                }
                if picked.len() == query.limit {
                    more = true;
                    return Ok(false);
                }
                picked.push(((stream, root.to_string()), root));
                Ok(true)
            },
        )?;
        let bundler = Bundler::new(self, room, user, &access);
        let mut chunk = Vec::with_capacity(picked.len());
        for (_, root) in &picked {
            let mut event = client_event(root, &self.event_object(root)?, true);
            bundler.bundle(&mut event)?;
            chunk.push(event);
        }
        Ok(ThreadsPage {
            chunk,
            next: more
                .then(|| picked.last().map(|(p, _)| p.clone()))
                .flatten(),
        })
    }

    /// A thread's latest reply position, and (when `participation` is
    /// asked) whether `user` sent the root or a reply.
    fn thread_activity(
        &self,
        room: &RoomId,
        root: &EventId,
        user: &UserId,
        participation: bool,
    ) -> Result<(Option<u64>, bool)> {
        let mut latest = None;
        let mut participated = participation
            && self
                .event_object(root)
                .ok()
                .and_then(|pdu| {
                    pdu.get("sender")
                        .and_then(|s| s.as_str().map(|s| s == user.as_str()))
                })
                .unwrap_or(false);
        let mut read = 0;
        self.trees
            .walk_children::<Error>(room.as_str(), root.as_str(), None, true, |child| {
                read += 1;
                if child.relation.rel_type == THREAD {
                    latest.get_or_insert(child.stream);
                    participated |= child.relation.sender == user.as_str();
                }
                let done = latest.is_some() && (!participation || participated);
                Ok(!done && read < MAX_DESCENDANTS)
            })?;
        Ok((latest, participated))
    }
}
