//! `POST /search`: room events whose body, name or topic holds the words
//! asked for, in the rooms the user is joined to, ranked or newest first,
//! with context, groups and room state as asked.
//! Spec: client-server-api "Server Side Search"; search.yaml.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use ruma::{
    api::client::search::search_events::v3::{
        Categories, Criteria, EventContextResult, GroupingKey, OrderBy, ResultCategories,
        ResultGroup, ResultGroupMap, ResultRoomEvents, SearchKeys, SearchResult, UserProfile,
    },
    events::StateEventType,
    serde::Raw,
    OwnedRoomId, OwnedUserId, RoomId, UInt, UserId,
};
use serde::Deserialize;
use warp::Filter;

use super::relations::raw_events;
use crate::{
    client::{body, session, v3, Route, Services},
    error::{Error, Result},
    http_util::{body_limited, raw_query, reply},
    request::Query,
    rooms::{
        client_event::client_event,
        reads::access::ReadAccess,
        relations::Bundler,
        search::{Hit, SearchQuery},
    },
    store::{
        accounts::Session,
        rooms::search::{BODY, NAME, TOPIC},
    },
    sync::{EventFilter, Token},
};

const DEFAULT_LIMIT: usize = 10;
const MAX_LIMIT: usize = 100;
/// Events of context on each side of a result at most.
const MAX_CONTEXT: usize = 20;

/// The response's body, as ruma's `Response` serialises it.
#[derive(serde::Serialize)]
struct ResponseBody {
    search_categories: ResultCategories,
}

#[derive(Deserialize)]
struct SearchBody {
    search_categories: Categories,
}

pub fn route(services: Services) -> Route {
    v3().and(warp::path!("search"))
        .and(warp::post())
        .and(session(services.accounts.clone()))
        .and(raw_query())
        .and(body_limited())
        .map(move |session: Session, query: String, bytes: Bytes| {
            reply(search(
                &services,
                &session.user_id,
                &Query::parse(&query),
                &bytes,
            ))
        })
        .boxed()
}

fn search(
    services: &Services,
    user: &UserId,
    query: &Query,
    bytes: &Bytes,
) -> Result<warp::reply::Response> {
    let request: SearchBody = body(bytes)?;
    let mut categories = ResultCategories::new();
    if let Some(criteria) = request.search_categories.room_events {
        categories.room_events = room_events(services, user, &criteria, query.get("next_batch"))?;
    }
    // ruma leaves an empty `results` out; matrix-js-sdk reads it as a
    // list (Synapse always sends one), so it is put back.
    let mut body = serde_json::to_value(ResponseBody {
        search_categories: categories,
    })
    .map_err(|e| Error::internal(e.to_string()))?;
    if let Some(room_events) = body["search_categories"]["room_events"].as_object_mut() {
        room_events
            .entry("results")
            .or_insert_with(|| serde_json::json!([]));
    }
    Ok(crate::http_util::ok_json(&body))
}

fn fields(keys: Option<&[SearchKeys]>) -> Result<u8> {
    let Some(keys) = keys else {
        return Ok(BODY | NAME | TOPIC);
    };
    keys.iter().try_fold(0, |fields, key| {
        Ok(fields
            | match key {
                SearchKeys::ContentBody => BODY,
                SearchKeys::ContentName => NAME,
                SearchKeys::ContentTopic => TOPIC,
                other => {
                    return Err(Error::invalid_param(format!(
                        "cannot search {}",
                        other.as_str()
                    )))
                }
            })
    })
}

fn room_events(
    services: &Services,
    user: &UserId,
    criteria: &Criteria,
    from: Option<&str>,
) -> Result<ResultRoomEvents> {
    let rooms = &services.rooms;
    let filter = EventFilter::from_room_events(criteria.filter.clone());
    let limit = criteria
        .filter
        .limit
        .map_or(DEFAULT_LIMIT, |l| {
            usize::try_from(u64::from(l)).unwrap_or(MAX_LIMIT)
        })
        .clamp(1, MAX_LIMIT);
    let room_allowed = |room: &RoomId| filter.room_allowed(room);
    let event_allowed = |room: &RoomId, pdu: &ruma::CanonicalJsonObject| filter.allows(room, pdu);
    let page = rooms.search(
        user,
        &SearchQuery {
            term: &criteria.search_term,
            fields: fields(criteria.keys.as_deref())?,
            recent: criteria.order_by == Some(OrderBy::Recent),
            limit,
            from,
            room_allowed: &room_allowed,
            event_allowed: &event_allowed,
        },
    )?;
    let mut answer = ResultRoomEvents::new();
    answer.count = UInt::try_from(page.count).ok();
    answer.highlights = page.highlights;
    answer.next_batch = page.next;
    let access = ReadAccess::Member;
    let context = &criteria.event_context;
    let before = usize::try_from(u64::from(context.before_limit))
        .unwrap_or(MAX_CONTEXT)
        .min(MAX_CONTEXT);
    let after = usize::try_from(u64::from(context.after_limit))
        .unwrap_or(MAX_CONTEXT)
        .min(MAX_CONTEXT);
    for hit in &page.hits {
        let mut event = client_event(&hit.id, &hit.pdu, true);
        Bundler::new(rooms, &hit.room, user, &access).bundle(&mut event)?;
        let mut result = SearchResult::new();
        result.rank = Some(hit.rank);
        result.result = Some(
            Raw::new(&event)
                .map_err(|e| Error::internal(e.to_string()))?
                .cast_unchecked(),
        );
        if before > 0 || after > 0 {
            result.context = event_context(
                services,
                user,
                hit,
                (before, after),
                context.include_profile,
            )?;
        }
        answer.results.push(result);
    }
    for grouping in &criteria.groupings.group_by {
        match &grouping.key {
            Some(GroupingKey::RoomId) => {
                answer
                    .groups
                    .insert(ResultGroupMap::RoomId(groups(&page.hits, |h| {
                        h.room.clone()
                    })));
            }
            Some(GroupingKey::Sender) => {
                answer
                    .groups
                    .insert(ResultGroupMap::Sender(groups(&page.hits, |h| {
                        sender_of(&h.pdu)
                    })));
            }
            _ => {}
        }
    }
    if criteria.include_state == Some(true) {
        let in_results: BTreeSet<&OwnedRoomId> = page.hits.iter().map(|h| &h.room).collect();
        for room in in_results {
            let mut state = Vec::new();
            for (_, id) in rooms.readable_state_ids(room, &access)? {
                state.push(client_event(&id, &rooms.event_object(&id)?, true));
            }
            answer.state.insert(room.clone(), raw_events(&state)?);
        }
    }
    Ok(answer)
}

fn sender_of(pdu: &ruma::CanonicalJsonObject) -> OwnedUserId {
    pdu.get("sender")
        .and_then(|s| s.as_str())
        .and_then(|s| OwnedUserId::try_from(s).ok())
        .unwrap_or_else(|| ruma::owned_user_id!("@unknown:invalid"))
}

/// Results grouped by a key, each group in result order.
fn groups<K: Ord>(hits: &[Hit], key: impl Fn(&Hit) -> K) -> BTreeMap<K, ResultGroup> {
    let mut groups: BTreeMap<K, ResultGroup> = BTreeMap::new();
    for (order, hit) in hits.iter().enumerate() {
        let group = groups.entry(key(hit)).or_default();
        group
            .order
            .get_or_insert(UInt::try_from(order).unwrap_or_default());
        group.results.push(hit.id.clone());
    }
    groups
}

/// The events around a result the user may see, and (when asked) the
/// profiles of their senders.
fn event_context(
    services: &Services,
    user: &UserId,
    hit: &Hit,
    (before, after): (usize, usize),
    profiles: bool,
) -> Result<EventContextResult> {
    let rooms = &services.rooms;
    let visible =
        |entries: Vec<(u64, ruma::OwnedEventId)>| -> Result<Vec<(u64, ruma::OwnedEventId)>> {
            let mut kept = Vec::new();
            for entry in entries {
                if rooms.visible_to(&entry.1, user)? {
                    kept.push(entry);
                }
            }
            Ok(kept)
        };
    let mut earlier = visible(rooms.timeline_between(&hit.room, 0, hit.stream, before, true)?)?;
    earlier.reverse();
    let later = visible(rooms.timeline_between(&hit.room, hit.stream, u64::MAX, after, false)?)?;
    let mut senders = BTreeSet::from([sender_of(&hit.pdu)]);
    let mut render = |entries: &[(u64, ruma::OwnedEventId)]| -> Result<Vec<serde_json::Value>> {
        entries
            .iter()
            .map(|(_, id)| {
                let pdu = rooms.event_object(id)?;
                senders.insert(sender_of(&pdu));
                Ok(client_event(id, &pdu, true))
            })
            .collect()
    };
    let mut context = EventContextResult::new();
    context.events_before = raw_events(&render(&earlier)?)?;
    context.events_after = raw_events(&render(&later)?)?;
    context.start = Some(
        Token::at(
            earlier
                .last()
                .map_or(hit.stream, |(p, _)| *p)
                .saturating_sub(1),
        )
        .to_string(),
    );
    context.end = Some(Token::at(later.last().map_or(hit.stream, |(p, _)| *p)).to_string());
    if profiles {
        for sender in senders {
            let Some((_, member)) =
                rooms.state_event(&hit.room, &StateEventType::RoomMember, sender.as_str())?
            else {
                continue;
            };
            let content = member.get("content").and_then(|c| c.as_object());
            let mut profile = UserProfile::new();
            profile.displayname = content
                .and_then(|c| c.get("displayname"))
                .and_then(|d| d.as_str())
                .map(str::to_owned);
            profile.avatar_url = content
                .and_then(|c| c.get("avatar_url"))
                .and_then(|a| a.as_str())
                .map(Into::into);
            context.profile_info.insert(sender, profile);
        }
    }
    Ok(context)
}
