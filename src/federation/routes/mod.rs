//! Federation listener routes, one file per spec endpoint.

mod key_query;
mod server_keys;
mod version;
pub mod well_known;

use std::sync::Arc;

use warp::{filters::BoxedFilter, reply::Response, Filter};

use super::{auth::authenticated, client::FederationClient};
use crate::{error::Error, keys::KeyService};

/// Every route the federation listener serves.
pub fn routes(keys: Arc<KeyService>, client: Arc<FederationClient>) -> BoxedFilter<(Response,)> {
    version::route()
        .or(server_keys::route(keys.clone()))
        .unify()
        .or(key_query::get_route(keys.clone()))
        .unify()
        .or(key_query::post_route(keys.clone()))
        .unify()
        .or(unknown_federation_endpoint(keys, client))
        .unify()
        .boxed()
}

/// Any other `/_matrix/federation/…` path is authenticated first and then
/// answered `M_UNRECOGNIZED`: an unauthenticated caller learns nothing
/// about which endpoints exist.
/// Spec: server-server-api.md "Unsupported endpoints".
fn unknown_federation_endpoint(
    keys: Arc<KeyService>,
    client: Arc<FederationClient>,
) -> BoxedFilter<(Response,)> {
    warp::path("_matrix")
        .and(warp::path("federation"))
        .and(authenticated(keys, client))
        .map(|request: super::auth::Authenticated| {
            tracing::debug!(origin = %request.origin, "unrecognized federation endpoint");
            Error::unrecognized("Unrecognized request").into_response()
        })
        .boxed()
}
