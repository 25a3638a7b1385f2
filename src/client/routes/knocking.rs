//! `POST /knock/{roomIdOrAlias}`: asks to be let into a `knock` room,
//! here when one of our users is in it, else through a resident server.
//! Spec: client-server-api "Knocking on rooms"; knocking.yaml.

use bytes::Bytes;
use serde_json::{json, Value};
use warp::Filter;

use super::joining::resolve_target;
use crate::{
    client::{body, respond, session, v3, Route, Services},
    error::{Error, Result},
    http_util::{body_limited, raw_query},
    rooms::membership::Content,
    store::accounts::Session,
};

pub fn route(services: Services) -> Route {
    v3().and(warp::path!("knock" / String))
        .and(warp::post())
        .and(session(services.accounts.clone()))
        .and(raw_query())
        .and(body_limited())
        .then(
            move |target: String, session: Session, query: String, bytes: Bytes| {
                let services = services.clone();
                async move { respond(knock(services, session, target, query, bytes)).await }
            },
        )
        .boxed()
}

async fn knock(
    services: Services,
    session: Session,
    target: String,
    query: String,
    bytes: Bytes,
) -> Result<Value> {
    let request: Value = body(&bytes)?;
    let mut content = Content::new();
    match &request["reason"] {
        Value::Null => {}
        Value::String(reason) => {
            content.insert("reason".into(), reason.clone().into());
        }
        _ => return Err(Error::bad_json("reason must be a string")),
    }
    let (room, servers) = resolve_target(&services, &target, &query).await?;
    services
        .membership
        .knock(&room, &session.user_id, &servers, &content)
        .await?;
    Ok(json!({ "room_id": room }))
}
