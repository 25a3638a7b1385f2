//! Server-side search: the events of a user's rooms whose words begin
//! with every word of the search term, read from the search index
//! (`store::rooms::search`), ranked or newest first, each one the user
//! may see. Spec: client-server-api "Server Side Search"; search.yaml.

use std::collections::HashMap;

use ruma::{CanonicalJsonObject, OwnedEventId, OwnedRoomId, RoomId, UserId};

use crate::{
    error::{Error, Result},
    rooms::RoomService,
    store::rooms::search::{words, Posting},
};

/// Words of a search term used at most.
const MAX_TERMS: usize = 16;
/// Postings read per word and room at most: a word in every message of
/// a huge room costs no more than this.
const MAX_POSTINGS: usize = 100_000;
/// Candidates ranked at most per search.
const MAX_CANDIDATES: usize = 200_000;

/// One search, as the route parsed it.
pub struct SearchQuery<'a> {
    pub term: &'a str,
    /// Fields to search, as `store::rooms::search` numbers them.
    pub fields: u8,
    /// Newest first (`order_by: recent`) rather than by rank.
    pub recent: bool,
    pub limit: usize,
    /// A `next_batch` of an earlier page of the same search.
    pub from: Option<&'a str>,
    pub room_allowed: &'a dyn Fn(&RoomId) -> bool,
    pub event_allowed: &'a dyn Fn(&RoomId, &CanonicalJsonObject) -> bool,
}

/// A found event.
pub struct Hit {
    pub room: OwnedRoomId,
    pub stream: u64,
    pub id: OwnedEventId,
    pub rank: f64,
    pub pdu: CanonicalJsonObject,
}

pub struct SearchPage {
    pub hits: Vec<Hit>,
    /// How many events matched (before visibility and filters: an upper bound).
    pub count: usize,
    pub next: Option<String>,
    /// The words looked for, for clients to highlight.
    pub highlights: Vec<String>,
}

/// Where the next page starts: below a position (newest first) or
/// after a number of results (by rank).
enum Batch {
    Below(u64),
    Skip(usize),
}

impl Batch {
    fn parse(text: &str) -> Result<Self> {
        let bad = || Error::invalid_param(format!("{text:?} is not a search batch of this server"));
        if let Some(position) = text.strip_prefix('p') {
            return position.parse().map(Batch::Below).map_err(|_| bad());
        }
        if let Some(skip) = text.strip_prefix('k') {
            return skip.parse().map(Batch::Skip).map_err(|_| bad());
        }
        Err(bad())
    }
}

impl RoomService {
    /// One page of results among the rooms `user` is joined to.
    pub fn search(&self, user: &UserId, query: &SearchQuery<'_>) -> Result<SearchPage> {
        let mut terms: Vec<String> = words(query.term).take(MAX_TERMS).collect();
        terms.sort();
        terms.dedup();
        let from = query.from.map(Batch::parse).transpose()?;
        let mut candidates: Vec<(f64, u64, OwnedRoomId)> = Vec::new();
        if !terms.is_empty() {
            for room in self.rooms_joined_by(user)? {
                if (query.room_allowed)(&room) {
                    self.candidates_in(&room, &terms, query.fields, &mut candidates)?;
                }
                if candidates.len() >= MAX_CANDIDATES {
                    break;
                }
            }
        }
        let count = candidates.len();
        if query.recent {
            candidates.sort_by_key(|c| std::cmp::Reverse(c.1));
        } else {
            candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));
        }
        let skip = match from {
            Some(Batch::Skip(n)) => n,
            _ => 0,
        };
        let below = match from {
            Some(Batch::Below(p)) => p,
            _ => u64::MAX,
        };
        let mut hits = Vec::new();
        let mut next = None;
        for (seen, (rank, stream, room)) in candidates.into_iter().enumerate().skip(skip) {
            if stream >= below {
                continue;
            }
            if hits.len() == query.limit {
                next = Some(match query.recent {
                    true => format!("p{}", hits.last().map_or(stream, |h: &Hit| h.stream)),
                    false => format!("k{seen}"),
                });
                break;
            }
            let Some(id) = self.event_at(&room, stream)? else {
                continue;
            };
            if !self.visible_to(&id, user)? {
                continue;
            }
            let pdu = self.event_object(&id)?;
            // The index keeps a redacted event's words; its text is gone.
            let redacted = matches!(pdu.get("unsigned"), Some(ruma::CanonicalJsonValue::Object(u)) if u.contains_key("redacted_because"));
            if !redacted && (query.event_allowed)(&room, &pdu) {
                hits.push(Hit {
                    room,
                    stream,
                    id,
                    rank,
                    pdu,
                });
            }
        }
        Ok(SearchPage {
            hits,
            count,
            next,
            highlights: terms,
        })
    }

    /// Events of `room` holding every term (as a word or a word's
    /// beginning), with their rank: a word found exactly weighs 1, one
    /// the term only begins ½, over the square root of the event's words,
    /// so a short message that says it ranks above a long one that
    /// mentions it.
    fn candidates_in(
        &self,
        room: &RoomId,
        terms: &[String],
        fields: u8,
        out: &mut Vec<(f64, u64, OwnedRoomId)>,
    ) -> Result<()> {
        let mut matched: Option<HashMap<u64, (f64, u16)>> = None;
        for term in terms {
            let mut here: HashMap<u64, (f64, u16)> = HashMap::new();
            for Posting {
                stream,
                exact,
                words,
                ..
            } in self
                .trees
                .postings(room.as_str(), term, fields, MAX_POSTINGS)?
            {
                let weight = if exact { 1.0 } else { 0.5 };
                let entry = here.entry(stream).or_insert((0.0, words));
                entry.0 = f64::max(entry.0, weight);
            }
            matched = Some(match matched {
                None => here,
                Some(mut before) => {
                    before.retain(|stream, _| here.contains_key(stream));
                    for (stream, (score, _)) in before.iter_mut() {
                        *score += here[stream].0;
                    }
                    before
                }
            });
            if matched.as_ref().is_some_and(HashMap::is_empty) {
                return Ok(());
            }
        }
        for (stream, (score, words)) in matched.unwrap_or_default() {
            let rank = score / f64::from(words.max(1)).sqrt();
            out.push((rank, stream, room.to_owned()));
        }
        Ok(())
    }

    /// The timeline event of `room` at `stream`.
    fn event_at(&self, room: &RoomId, stream: u64) -> Result<Option<OwnedEventId>> {
        Ok(self
            .trees
            .timeline_between(
                room.as_str(),
                stream.saturating_sub(1),
                stream.saturating_add(1),
                1,
                false,
            )?
            .pop()
            .filter(|(s, _)| *s == stream)
            .map(|(_, id)| id))
    }
}
