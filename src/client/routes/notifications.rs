//! `GET /notifications`: the events that notified the user, newest first,
//! each with the actions of the rule that matched and whether the user has
//! read it. Spec: client-server-api "Listing Notifications";
//! notifications.yaml.

use ruma::{
    api::client::push::get_notifications::v3::{Notification, Response},
    serde::Raw,
    MilliSecondsSinceUnixEpoch, UInt,
};
use warp::Filter;

use crate::{
    client::{session, typed, v3, Route, Services},
    error::{Error, Result},
    http_util::{raw_query, reply},
    request::Query,
    rooms::client_event::client_event,
    store::accounts::Session,
};

const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 100;

pub fn route(services: Services) -> Route {
    v3().and(warp::path!("notifications"))
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .and(raw_query())
        .map(move |session: Session, query: String| {
            reply(notifications(&services, &session, &Query::parse(&query)))
        })
        .boxed()
}

fn notifications(
    services: &Services,
    session: &Session,
    query: &Query,
) -> Result<warp::reply::Response> {
    let number = |name: &str| {
        query
            .get(name)
            .map(|text| {
                text.parse::<u64>()
                    .map_err(|_| Error::invalid_param(format!("{name} must be a number")))
            })
            .transpose()
    };
    let from = number("from")?;
    let limit = number("limit")?.map_or(DEFAULT_LIMIT, |n| {
        usize::try_from(n).unwrap_or(MAX_LIMIT).clamp(1, MAX_LIMIT)
    });
    let highlights = match query.get("only") {
        None => false,
        Some("highlight") => true,
        Some(_) => return Err(Error::invalid_param("only may be \"highlight\"")),
    };
    let (found, next) = services
        .rooms
        .notifications(&session.user_id, from, limit, highlights)?;
    let mut listed = Vec::new();
    for found in found {
        let ts = match found.event.get("origin_server_ts") {
            Some(ruma::CanonicalJsonValue::Integer(ts)) => UInt::try_from(i64::from(*ts)).ok(),
            _ => None,
        };
        let event = Raw::new(&client_event(&found.event_id, &found.event, true))
            .map_err(|e| Error::internal(e.to_string()))?;
        listed.push(Notification::new(
            found.actions,
            event.cast_unchecked(),
            found.read,
            found.room,
            MilliSecondsSinceUnixEpoch(ts.unwrap_or_default()),
        ));
    }
    let mut response = Response::new(listed);
    response.next_token = next.map(|n| n.to_string());
    Ok(typed(response))
}
