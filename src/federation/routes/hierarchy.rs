//! `GET /_matrix/federation/v1/hierarchy/{roomId}?suggested_only=`: a
//! space and the children we hold, for another server's clients.
//! Spec: server-server-api.md "Spaces"; space_hierarchy.yaml.

use warp::{filters::BoxedFilter, reply::Response, Filter};

use super::{admitted, Services};
use crate::{
    federation::auth::Authenticated,
    http_util::{ok_json, raw_query, reply},
    request::{params, room_id},
};

pub fn route(services: Services) -> BoxedFilter<(Response,)> {
    warp::path!("_matrix" / "federation" / "v1" / "hierarchy" / String)
        .and(warp::get())
        .and(raw_query())
        .and(admitted(&services))
        .map(move |room: String, query: String, request: Authenticated| {
            let suggested_only = params(&query, "suggested_only")
                .first()
                .is_some_and(|v| v == "true");
            reply(room_id(&room).and_then(|room| {
                services.rooms.check_acl(&room, &request.origin)?;
                services
                    .hierarchy
                    .for_server(&room, &request.origin, suggested_only)
                    .map(|answer| ok_json(&answer))
            }))
        })
        .boxed()
}
