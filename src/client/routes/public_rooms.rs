//! `GET`/`POST /publicRooms` (ours, or another server's with `server=`),
//! `GET`/`PUT /directory/list/room/{roomId}`.
//! Spec: client-server-api "Listing rooms"; list_public_rooms.yaml.

use bytes::Bytes;
use ruma::OwnedServerName;
use serde_json::{json, Value};
use warp::Filter;

use crate::{
    client::{body, respond, session, v3, Route, Services},
    error::{Error, Result},
    http_util::{body_limited, raw_query},
    request::{param, room_id},
    store::accounts::Session,
};

/// The filter and paging of a request, from the query or the body.
async fn list(services: &Services, query: &str, request: Value) -> Result<Value> {
    let limit = request["limit"]
        .as_u64()
        .or_else(|| param(query, "limit").and_then(|l| l.parse().ok()))
        .map(|l| l as usize);
    let since = request["since"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| param(query, "since"));
    let term = request["filter"]["generic_search_term"].as_str();
    match param(query, "server") {
        Some(server) if server != services.rooms.server_name().as_str() => {
            let server: OwnedServerName = crate::request::parsed("server", &server)?;
            let mut body = json!({ "filter": request["filter"] });
            if let Some(limit) = limit {
                body["limit"] = json!(limit);
            }
            if let Some(since) = since {
                body["since"] = json!(since);
            }
            services.directory.remote_public_rooms(&server, &body).await
        }
        _ => services
            .directory
            .public_rooms(limit, since.as_deref(), term),
    }
}

pub fn routes(services: Services) -> Route {
    let get_services = services.clone();
    let get = v3()
        .and(warp::path!("publicRooms"))
        .and(warp::get())
        .and(raw_query())
        .then(move |query: String| {
            let services = get_services.clone();
            async move { respond(async { list(&services, &query, json!({})).await }).await }
        });
    let post_services = services.clone();
    let post = v3()
        .and(warp::path!("publicRooms"))
        .and(warp::post())
        .and(session(services.accounts.clone()))
        .and(raw_query())
        .and(body_limited())
        .then(move |_: Session, query: String, bytes: Bytes| {
            let services = post_services.clone();
            async move { respond(async { list(&services, &query, body(&bytes)?).await }).await }
        });
    let directory = services.directory.clone();
    let visibility = v3()
        .and(warp::path!("directory" / "list" / "room" / String))
        .and(warp::get())
        .then(move |room: String| {
            let directory = directory.clone();
            respond(async move {
                let public = directory.is_public(&room_id(&room)?)?;
                Ok(json!({ "visibility": if public { "public" } else { "private" } }))
            })
        });
    let directory = services.directory.clone();
    let set = v3()
        .and(warp::path!("directory" / "list" / "room" / String))
        .and(warp::put())
        .and(session(services.accounts.clone()))
        .and(body_limited())
        .then(move |room: String, session: Session, bytes: Bytes| {
            let directory = directory.clone();
            respond(async move {
                let request: Value = body(&bytes)?;
                let public = match request["visibility"].as_str() {
                    Some("public") => true,
                    Some("private") => false,
                    _ => {
                        return Err(Error::bad_json(
                            "visibility must be \"public\" or \"private\"",
                        ))
                    }
                };
                directory.set_public(&room_id(&room)?, &session.user_id, public)?;
                Ok(json!({}))
            })
        });
    get.or(post)
        .unify()
        .or(visibility)
        .unify()
        .or(set)
        .unify()
        .boxed()
}
