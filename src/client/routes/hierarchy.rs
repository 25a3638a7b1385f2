//! `GET /_matrix/client/v1/rooms/{roomId}/hierarchy`: a space's tree,
//! breadth first, in pages. Spec: client-server-api "Spaces";
//! space_hierarchy.yaml.

use warp::Filter;

use crate::{
    client::{respond, session, Route, Services},
    error::{Error, Result},
    http_util::raw_query,
    request::{param, room_id},
    rooms::hierarchy::{Walk, MAX_DEPTH, MAX_PAGE},
    store::accounts::Session,
};

pub fn route(services: Services) -> Route {
    warp::path!("_matrix" / "client" / "v1" / "rooms" / String / "hierarchy")
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .and(raw_query())
        .then(move |room: String, session: Session, query: String| {
            let services = services.clone();
            async move {
                respond(async move {
                    let room = room_id(&room)?;
                    let walk = walk(&query)?;
                    services
                        .hierarchy
                        .for_user(&room, &session.user_id, &walk)
                        .await
                })
                .await
            }
        })
        .boxed()
}

fn walk(query: &str) -> Result<Walk> {
    let number = |name: &str| -> Result<Option<usize>> {
        param(query, name)
            .map(|n| {
                n.parse::<usize>()
                    .map_err(|_| Error::invalid_param(format!("{name} {n:?} is not a number")))
            })
            .transpose()
    };
    let from = match param(query, "from") {
        Some(token) => token
            .strip_prefix('h')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| Error::invalid_param(format!("{token:?} is not a hierarchy token")))?,
        None => 0,
    };
    Ok(Walk {
        suggested_only: param(query, "suggested_only").is_some_and(|v| v == "true"),
        max_depth: number("max_depth")?.unwrap_or(MAX_DEPTH).min(MAX_DEPTH),
        limit: number("limit")?.unwrap_or(50).clamp(1, MAX_PAGE),
        from,
    })
}
