//! The content repository's client endpoints: uploads under
//! `/_matrix/media/v3/` (and `v1/create`), downloads, thumbnails and the
//! configuration under `/_matrix/client/v1/media/`, and the deprecated
//! unauthenticated `/_matrix/media/{v3,r0}/` reads older clients use
//! (answered only while `media.legacy_unauthenticated` is on).
//! Spec: client-server-api "Content repository"; content-repo.yaml,
//! authed-content-repo.yaml.

mod config;
mod create;
mod download;
mod thumbnail;
mod upload;

use warp::{Filter, Rejection};

use super::super::{Route, Services};
use crate::error::Error;

pub fn routes(services: Services) -> Route {
    upload::routes(services.clone())
        .or(create::route(services.clone()))
        .unify()
        .or(config::routes(services.clone()))
        .unify()
        .or(download::routes(services.clone()))
        .unify()
        .or(thumbnail::routes(services))
        .unify()
        .boxed()
}

/// `/_matrix/media/v3/…`, and `r0/…` that older clients call.
fn media_v3() -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::path("_matrix")
        .and(warp::path("media"))
        .and(warp::path("v3").or(warp::path("r0")).unify())
}

/// `/_matrix/client/v1/media/…`.
fn client_v1() -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::path!("_matrix" / "client" / "v1" / "media" / ..)
}

/// Lets a deprecated unauthenticated read through while the server
/// serves them; 404 once they are frozen.
fn legacy_allowed(services: &Services) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    let open = services.media.config().legacy_unauthenticated;
    warp::any()
        .and_then(move || async move {
            if open {
                Ok(())
            } else {
                Err(warp::reject::custom(Error::not_found(
                    "unauthenticated media is frozen here: use /_matrix/client/v1/media",
                )))
            }
        })
        .untuple_one()
}
