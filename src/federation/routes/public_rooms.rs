//! `GET`/`POST /_matrix/federation/v1/publicRooms`: our public room list
//! for other servers' clients. Spec: server-server-api.md "Public Room
//! Directory"; public_rooms.yaml.

use serde_json::Value;
use warp::{filters::BoxedFilter, reply::Response, Filter};

use super::{admitted, Services};
use crate::{
    federation::auth::Authenticated,
    http_util::{ok_json, parse_json, raw_query, reply},
    request::params,
};

pub fn routes(services: Services) -> BoxedFilter<(Response,)> {
    let get_services = services.clone();
    let get = warp::path!("_matrix" / "federation" / "v1" / "publicRooms")
        .and(warp::get())
        .and(raw_query())
        .and(admitted(&services))
        .map(move |query: String, _: Authenticated| {
            let first = |name: &str| params(&query, name).into_iter().next();
            let limit = first("limit").and_then(|l| l.parse().ok());
            reply(
                get_services
                    .directory
                    .public_rooms(limit, first("since").as_deref(), None)
                    .map(|answer| ok_json(&answer)),
            )
        });
    let post = warp::path!("_matrix" / "federation" / "v1" / "publicRooms")
        .and(warp::post())
        .and(admitted(&services))
        .map(move |request: Authenticated| {
            reply(parse_json::<Value>(&request.body).and_then(|body| {
                let limit = body["limit"].as_u64().map(|l| l as usize);
                services
                    .directory
                    .public_rooms(
                        limit,
                        body["since"].as_str(),
                        body["filter"]["generic_search_term"].as_str(),
                    )
                    .map(|answer| ok_json(&answer))
            }))
        });
    get.or(post).unify().boxed()
}
