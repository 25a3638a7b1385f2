//! `GET /_matrix/federation/v1/query/directory?room_alias=…`: where one of
//! our aliases points. Spec: server-server-api.md "Querying for
//! information"; query.yaml.

use ruma::OwnedRoomAliasId;
use serde_json::json;
use warp::{filters::BoxedFilter, reply::Response, Filter};

use super::{admitted, Services};
use crate::{
    error::{Error, Result},
    federation::auth::Authenticated,
    http_util::{ok_json, raw_query, reply},
    request::{parsed, Query},
};

pub fn route(services: Services) -> BoxedFilter<(Response,)> {
    warp::path!("_matrix" / "federation" / "v1" / "query" / "directory")
        .and(warp::get())
        .and(raw_query())
        .and(admitted(&services))
        .map(move |query: String, _: Authenticated| reply(handle(&services, &query)))
        .boxed()
}

fn handle(services: &Services, query: &str) -> Result<Response> {
    let query = Query::parse(query);
    let alias: OwnedRoomAliasId = parsed("room_alias", query.required("room_alias")?)?;
    if alias.server_name() != services.rooms.server_name() {
        return Err(Error::not_found(format!(
            "{alias} is not an alias of this server"
        )));
    }
    let resolved = services.directory.resolve_local(&alias)?;
    Ok(ok_json(&json!(resolved)))
}
