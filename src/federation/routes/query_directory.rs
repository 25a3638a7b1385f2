//! `GET /_matrix/federation/v1/query/directory?room_alias=…`: where one of
//! our aliases points (one an application service claims is asked of it
//! first, as for our own users). Spec: server-server-api.md "Querying for
//! information"; query.yaml.

use ruma::OwnedRoomAliasId;
use serde_json::json;
use warp::{filters::BoxedFilter, reply::Response};

use super::{query_get, Services};
use crate::{
    error::{Error, Result},
    http_util::ok_json,
    request::{parsed, Query},
};

pub fn route(services: Services) -> BoxedFilter<(Response,)> {
    query_get(services, "directory", handle)
}

async fn handle(services: Services, query: Query) -> Result<Response> {
    let alias: OwnedRoomAliasId = parsed("room_alias", query.required("room_alias")?)?;
    if alias.server_name() != services.rooms.server_name() {
        return Err(Error::not_found(format!(
            "{alias} is not an alias of this server"
        )));
    }
    let resolved = services.resolve_alias(&alias, None).await?;
    Ok(ok_json(&json!(resolved)))
}
