//! `POST /_matrix/client/unstable/org.matrix.simplified_msc3575/sync`:
//! simplified sliding sync, what Element X needs. Spec: MSC4186.

use bytes::Bytes;
use ruma::api::{client::sync::sync_events::v5, IncomingRequestExt};
use warp::Filter;

use crate::{
    client::{body, session, Route, Services},
    error::{Error, Result},
    http_util::{body_limited, ok_json, raw_query, reply},
    store::accounts::Session,
    sync::SlidingResponse,
};

pub fn route(services: Services) -> Route {
    warp::path!("_matrix" / "client" / "unstable" / "org.matrix.simplified_msc3575" / "sync")
        .and(warp::post())
        .and(session(services.accounts.clone()))
        .and(raw_query())
        .and(body_limited())
        .then(move |session: Session, query: String, bytes: Bytes| {
            let services = services.clone();
            async move {
                let result = sync(&services, &session, &query, &bytes).await;
                reply(result.map(|answer| ok_json(&answer)))
            }
        })
        .boxed()
}

async fn sync(
    services: &Services,
    session: &Session,
    query: &str,
    bytes: &Bytes,
) -> Result<SlidingResponse> {
    let request = parse(query, bytes)?;
    let extras = body(bytes)?;
    // Polling marks the user online unless asked otherwise, and keeps
    // them so while it lasts (as `/sync`).
    let state = match request.set_presence.as_str() {
        "online" => Some("online"),
        "unavailable" => Some("unavailable"),
        _ => None,
    };
    let _syncing = state
        .map(|state| services.edus.syncing(&session.user_id, state))
        .transpose()?;
    services.sync.sliding_sync(session, request, extras).await
}

/// The request as ruma's type reads it (`pos`, `timeout` and
/// `set_presence` in the query, the rest in the body).
fn parse(query: &str, bytes: &Bytes) -> Result<v5::Request> {
    let uri = format!("/_matrix/client/unstable/org.matrix.simplified_msc3575/sync?{query}");
    let http = http::Request::post(uri)
        .body(bytes.as_ref())
        .map_err(|e| Error::invalid_param(e.to_string()))?;
    v5::Request::try_from_http_request(http, &[] as &[&str])
        .map_err(|e| Error::bad_json(format!("request: {e}")))
}
