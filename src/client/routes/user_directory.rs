//! `POST /user_directory/search`.
//! Spec: client-server-api "User directory"; users.yaml.

use bytes::Bytes;
use serde_json::{json, Value};
use warp::Filter;

use crate::{
    client::{body, respond, session, v3, Route, Services},
    error::{Error, Result},
    http_util::body_limited,
    rooms::user_directory::{search, MAX_RESULTS},
    store::accounts::Session,
};

pub fn route(services: Services) -> Route {
    v3().and(warp::path!("user_directory" / "search"))
        .and(warp::post())
        .and(session(services.accounts.clone()))
        .and(body_limited())
        .then(move |session: Session, bytes: Bytes| {
            let services = services.clone();
            respond(async move { answer(&services, &session, &bytes) })
        })
        .boxed()
}

fn answer(services: &Services, session: &Session, bytes: &Bytes) -> Result<Value> {
    let request: Value = body(bytes)?;
    let term = request["search_term"]
        .as_str()
        .ok_or_else(|| Error::bad_json("search_term must be a string"))?;
    let limit = request["limit"]
        .as_u64()
        .map_or(10, |n| (n as usize).clamp(1, MAX_RESULTS));
    let (results, limited) = search(
        &services.rooms,
        &services.directory,
        &session.user_id,
        term,
        limit,
    )?;
    Ok(json!({"results": results, "limited": limited}))
}
