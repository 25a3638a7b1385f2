//! `GET /_matrix/federation/v1/query/profile?user_id=…&field=…`: one of
//! our users' profile. Spec: server-server-api.md "Querying for
//! information"; query.yaml.

use ruma::OwnedUserId;
use serde_json::json;
use warp::{filters::BoxedFilter, reply::Response, Filter};

use super::{admitted, Services};
use crate::{
    accounts::profiles::FIELDS,
    error::{Error, Result},
    federation::auth::Authenticated,
    http_util::{ok_json, raw_query, reply},
    request::{params, parsed, Query},
};

pub fn route(services: Services) -> BoxedFilter<(Response,)> {
    warp::path!("_matrix" / "federation" / "v1" / "query" / "profile")
        .and(warp::get())
        .and(raw_query())
        .and(admitted(&services))
        .map(move |query: String, _: Authenticated| reply(handle(&services, &query)))
        .boxed()
}

fn handle(services: &Services, query: &str) -> Result<Response> {
    let user: OwnedUserId = parsed("user_id", Query::parse(query).required("user_id")?)?;
    if user.server_name() != services.rooms.server_name() {
        return Err(Error::not_found(format!(
            "{user} is not a user of this server"
        )));
    }
    let profile = services.profiles.local(&user)?;
    let answer = match params(query, "field").into_iter().next() {
        None => profile,
        Some(field) if FIELDS.contains(&field.as_str()) => match profile.get(&field) {
            Some(value) => json!({ field: value }),
            None => json!({}),
        },
        Some(field) => {
            return Err(Error::invalid_param(format!(
                "unknown profile field {field:?}"
            )))
        }
    };
    Ok(ok_json(&answer))
}
