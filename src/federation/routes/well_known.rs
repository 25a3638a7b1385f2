use std::sync::Arc;

use warp::{filters::BoxedFilter, reply::Response, Filter};

use crate::{config::WellKnown, error::Error, http_util::ok_json};

/// `GET /.well-known/matrix/server` and `/.well-known/matrix/client`, so a
/// deployment behind a reverse proxy on port 443 can delegate federation.
/// Spec: server-server-api.md "Resolving server names" (the `wellknown`
/// endpoint) and client-server-api "Well-known URIs".
pub fn routes(well_known: Arc<WellKnown>) -> BoxedFilter<(Response,)> {
    let config = well_known.clone();
    let server = warp::path!(".well-known" / "matrix" / "server")
        .and(warp::get())
        .map(move || match &config.server {
            Some(server) => ok_json(&serde_json::json!({ "m.server": server })),
            None => Error::not_found(
                "this server does not delegate federation (well_known.server is unset)",
            )
            .into_response(),
        });
    let client = warp::path!(".well-known" / "matrix" / "client")
        .and(warp::get())
        .map(move || match &well_known.client {
            Some(base_url) => {
                ok_json(&serde_json::json!({ "m.homeserver": { "base_url": base_url } }))
            }
            None => Error::not_found("well_known.client is unset").into_response(),
        });
    server.or(client).unify().boxed()
}
