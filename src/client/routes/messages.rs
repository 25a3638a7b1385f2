//! `GET /rooms/{roomId}/messages`: the timeline in pages, either way, and
//! before it the history other servers hold (fetched on demand). Spec: client-server-api "Getting events for a room";
//! message_pagination.yaml.

use std::collections::HashSet;

use ruma::{events::StateEventType, OwnedUserId};
use serde_json::{json, Value};
use warp::Filter;

use crate::{
    client::{respond, session, v3, Route, Services},
    error::{Error, Result},
    http_util::raw_query,
    request::param,
    rooms::{client_event::client_event, history::next_back, history::Page, relations::Bundler},
    store::accounts::Session,
    sync::{EventFilter, Token},
};

const DEFAULT_LIMIT: usize = 10;
const MAX_LIMIT: usize = 1000;

pub fn route(services: Services) -> Route {
    v3().and(warp::path!("rooms" / String / "messages"))
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .and(raw_query())
        .then(move |room: String, session: Session, query: String| {
            let services = services.clone();
            async move { respond(messages(&services, &room, &session, &query)).await }
        })
        .boxed()
}

/// A pagination token: `s…` in the timeline (as sync's `prev_batch`),
/// `b{seq}` in the history fetched from other servers.
fn page(query: &str, name: &str) -> Result<Option<Page>> {
    let Some(text) = param(query, name) else {
        return Ok(None);
    };
    if let Some(seq) = text.strip_prefix('b') {
        let seq = seq
            .parse()
            .map_err(|_| Error::invalid_param(format!("{text:?} is not a pagination token")))?;
        return Ok(Some(Page::Backfilled(seq)));
    }
    Ok(Some(Page::Stream(Token::parse(&text)?.position)))
}

fn token(page: Page) -> String {
    match page {
        Page::Stream(position) => Token::at(position).to_string(),
        Page::Backfilled(seq) => format!("b{seq}"),
    }
}

async fn messages(
    services: &Services,
    room: &str,
    session: &Session,
    query: &str,
) -> Result<Value> {
    let rooms = &services.rooms;
    let room = crate::request::room_id(room)?;
    let access = rooms.read_access(&room, &session.user_id)?;
    let backwards = match param(query, "dir").as_deref() {
        Some("b") => true,
        Some("f") => false,
        _ => return Err(Error::invalid_param("dir must be \"b\" or \"f\"")),
    };
    let limit = match param(query, "limit") {
        Some(n) => n
            .parse::<usize>()
            .map_err(|_| Error::invalid_param(format!("limit {n:?} is not a number")))?
            .clamp(1, MAX_LIMIT),
        None => DEFAULT_LIMIT,
    };
    let filter = param(query, "filter")
        .map(|f| EventFilter::parse(&f))
        .transpose()?
        .unwrap_or_default();
    let from = page(query, "from")?.unwrap_or(Page::Stream(if backwards {
        access.latest_position(rooms.position())
    } else {
        0
    }));
    let to = page(query, "to")?;
    let events = if backwards {
        services.history.page_back(&room, from, to, limit).await?
    } else {
        rooms.page(&room, from, to, limit, false)?
    };
    // Going back, a short page means the history ended (fetching older
    // history was tried); going forward, the client comes back for more.
    let end = match events.last() {
        Some((page, _)) if backwards && events.len() == limit => Some(next_back(*page)),
        Some((page, _)) if !backwards => Some(*page),
        _ => None,
    };
    let mut senders: HashSet<OwnedUserId> = HashSet::new();
    let mut chunk = Vec::new();
    let bundler = Bundler::new(rooms, &room, &session.user_id, &access);
    for (_, id) in &events {
        if !rooms.readable_event(id, &session.user_id, &access)? {
            continue;
        }
        let pdu = rooms.event_object(id)?;
        if !filter.allows(&room, &pdu) {
            continue;
        }
        if let Some(sender) = pdu.get("sender").and_then(|s| s.as_str()) {
            senders.extend(OwnedUserId::try_from(sender).ok());
        }
        let mut event = client_event(id, &pdu, true);
        bundler.bundle(&mut event)?;
        services.accounts.echo_transaction_id(
            &mut event,
            &session.user_id,
            session.device_id.as_str(),
        )?;
        chunk.push(event);
    }
    let mut state = Vec::new();
    if filter.lazy_members() {
        for sender in &senders {
            if let Some((id, pdu)) =
                rooms.state_event(&room, &StateEventType::RoomMember, sender.as_str())?
            {
                state.push(client_event(&id, &pdu, true));
            }
        }
    }
    let mut answer = json!({ "start": token(from), "chunk": chunk, "state": state });
    if let Some(end) = end {
        answer["end"] = json!(token(end));
    }
    Ok(answer)
}
