use std::{collections::BTreeMap, sync::Arc};

use bytes::Bytes;
use ruma::OwnedServerName;
use serde::Deserialize;
use warp::{filters::BoxedFilter, reply::Response, Filter};

use crate::{
    error::{Error, Result},
    http_util::{body_limited, ok_json, parse_json, reply},
    keys::KeyService,
    listener::PeerIp,
    services::Strangers,
};

/// Servers one batch query may name; each may cost an outbound fetch.
const MAX_SERVERS_PER_QUERY: usize = 100;

#[derive(Deserialize)]
struct QueryParams {
    minimum_valid_until_ts: Option<u64>,
}

/// `GET /_matrix/key/v2/query/{serverName}`, and the older
/// `…/{serverName}/{keyId}` that some servers still send: the key ID is
/// deprecated and all the server's keys are given either way.
/// Spec: server-server-api.md "Querying Keys Through Another Server".
pub fn get_route(keys: Arc<KeyService>, strangers: Strangers) -> BoxedFilter<(Response,)> {
    let server = warp::path!("_matrix" / "key" / "v2" / "query" / String);
    let with_key_id = warp::path!("_matrix" / "key" / "v2" / "query" / String / String)
        .map(|server: String, _key_id: String| server);
    server
        .or(with_key_id)
        .unify()
        .and(warp::get())
        .and(warp::query::<QueryParams>())
        .and(warp::ext::optional::<PeerIp>())
        .then(
            move |server: String, params: QueryParams, from: Option<PeerIp>| {
                let keys = keys.clone();
                let may_fetch = strangers.allowance(from);
                async move {
                    reply(
                        query_one(&keys, &server, params.minimum_valid_until_ts, &may_fetch).await,
                    )
                }
            },
        )
        .boxed()
}

async fn query_one(
    keys: &KeyService,
    server: &str,
    minimum: Option<u64>,
    may_fetch: &(dyn Fn() -> bool + Sync),
) -> Result<Response> {
    let server = parse_server_name(server)?;
    let found = keys.notary_lookup(&server, minimum, may_fetch).await?;
    Ok(ok_json(
        &serde_json::json!({ "server_keys": found.into_iter().collect::<Vec<_>>() }),
    ))
}

fn parse_server_name(name: &str) -> Result<OwnedServerName> {
    crate::request::id("serverName", name)
}

#[derive(Deserialize)]
struct BatchQuery {
    server_keys: BTreeMap<String, BTreeMap<String, Criteria>>,
}

#[derive(Deserialize)]
struct Criteria {
    minimum_valid_until_ts: Option<u64>,
}

/// `POST /_matrix/key/v2/query`
/// Spec: server-server-api.md "Querying Keys Through Another Server".
pub fn post_route(keys: Arc<KeyService>, strangers: Strangers) -> BoxedFilter<(Response,)> {
    warp::path!("_matrix" / "key" / "v2" / "query")
        .and(warp::post())
        .and(warp::ext::optional::<PeerIp>())
        .and(body_limited())
        .then(move |from: Option<PeerIp>, body: Bytes| {
            let keys = keys.clone();
            let may_fetch = strangers.allowance(from);
            async move { reply(query_batch(&keys, &body, &may_fetch).await) }
        })
        .boxed()
}

async fn query_batch(
    keys: &KeyService,
    body: &[u8],
    may_fetch: &(dyn Fn() -> bool + Sync),
) -> Result<Response> {
    let query: BatchQuery = parse_json(body)?;
    if query.server_keys.len() > MAX_SERVERS_PER_QUERY {
        return Err(Error::invalid_param(format!(
            "at most {MAX_SERVERS_PER_QUERY} servers per query"
        )));
    }
    let mut lookups = Vec::with_capacity(query.server_keys.len());
    for (server, criteria) in query.server_keys {
        // We return every key of the server; the strictest minimum asked for wins.
        let minimum = criteria
            .values()
            .filter_map(|c| c.minimum_valid_until_ts)
            .max();
        lookups.push((parse_server_name(&server)?, minimum));
    }
    let found = keys.notary_batch(lookups, may_fetch).await?;
    Ok(ok_json(&serde_json::json!({ "server_keys": found })))
}

#[cfg(test)]
mod tests;
