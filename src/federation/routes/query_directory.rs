//! `GET /_matrix/federation/v1/query/directory?room_alias=…`: where one of
//! our aliases points. Spec: server-server-api.md "Querying for
//! information"; query.yaml.

use ruma::OwnedRoomAliasId;
use serde_json::json;
use warp::{filters::BoxedFilter, reply::Response, Filter};

use super::{admitted, query_values, Services};
use crate::{
    error::{Error, Result},
    federation::auth::Authenticated,
    http_util::{ok_json, raw_query, reply},
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
    let alias = query_values(query, "room_alias")
        .into_iter()
        .next()
        .ok_or_else(|| {
            Error::new(
                http::StatusCode::BAD_REQUEST,
                "M_MISSING_PARAM",
                "room_alias is required",
            )
        })?;
    let alias = OwnedRoomAliasId::try_from(alias.as_str())
        .map_err(|e| Error::invalid_param(format!("{alias:?}: {e}")))?;
    if alias.server_name() != services.rooms.server_name() {
        return Err(Error::not_found(format!(
            "{alias} is not an alias of this server"
        )));
    }
    let resolved = services.directory.resolve_local(&alias)?;
    Ok(ok_json(&json!(resolved)))
}
