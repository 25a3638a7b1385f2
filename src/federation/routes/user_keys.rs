//! `POST /_matrix/federation/v1/user/keys/query` and `…/user/keys/claim`:
//! our users' device keys and one-time keys, for other servers' clients.
//! Spec: server-server-api.md "End-to-End Encryption"; user_keys.yaml.

use serde_json::{Map, Value};
use warp::{filters::BoxedFilter, reply::Response, Filter};

use super::{admitted, Services};
use crate::{
    error::{Error, Result},
    federation::auth::Authenticated,
    http_util::{ok_json, parse_json, reply},
};

fn field(body: &[u8], name: &str) -> Result<Map<String, Value>> {
    let value: Value = parse_json(body)?;
    match &value[name] {
        Value::Object(map) => Ok(map.clone()),
        _ => Err(Error::bad_json(format!("{name} must be an object"))),
    }
}

pub fn routes(services: Services) -> BoxedFilter<(Response,)> {
    let query_services = services.clone();
    let query = warp::path!("_matrix" / "federation" / "v1" / "user" / "keys" / "query")
        .and(warp::post())
        .and(admitted(&services))
        .map(move |request: Authenticated| {
            reply(
                field(&request.body, "device_keys")
                    .and_then(|query| query_services.e2ee.query_local(&query, None))
                    .map(|answer| ok_json(&answer)),
            )
        });
    let claim = warp::path!("_matrix" / "federation" / "v1" / "user" / "keys" / "claim")
        .and(warp::post())
        .and(admitted(&services))
        .map(move |request: Authenticated| {
            reply(
                field(&request.body, "one_time_keys")
                    .and_then(|claim| services.e2ee.claim_local(&claim))
                    .map(|answer| ok_json(&answer)),
            )
        });
    query.or(claim).unify().boxed()
}
