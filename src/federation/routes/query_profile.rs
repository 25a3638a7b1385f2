//! `GET /_matrix/federation/v1/query/profile?user_id=…&field=…`: one of
//! our users' profile. Spec: server-server-api.md "Querying for
//! information"; query.yaml.

use ruma::OwnedUserId;
use serde_json::json;
use warp::{filters::BoxedFilter, reply::Response};

use super::{query_get, Services};
use crate::{
    accounts::profiles::key,
    error::{Error, Result},
    http_util::ok_json,
    request::{parsed, Query},
};

pub fn route(services: Services) -> BoxedFilter<(Response,)> {
    query_get(services, "profile", handle)
}

/// A user an application service claims that does not exist yet is
/// asked of it first, as for our own users' lookups.
async fn handle(services: Services, query: Query) -> Result<Response> {
    let user: OwnedUserId = parsed("user_id", query.required("user_id")?)?;
    if user.server_name() != services.rooms.server_name() {
        return Err(Error::not_found(format!(
            "{user} is not a user of this server"
        )));
    }
    services.ask_for_user(&user).await?;
    let profile = services.profiles.local(&user)?;
    let answer = match query.get("field") {
        None => profile,
        Some(field) => {
            let field = key(field)?;
            match profile.get(field) {
                Some(value) => json!({ field: value }),
                None => json!({}),
            }
        }
    };
    Ok(ok_json(&answer))
}
