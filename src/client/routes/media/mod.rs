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
mod preview_url;
mod thumbnail;
mod upload;

use warp::{Filter, Rejection};

use ruma::ServerName;

use super::super::{Route, Services};
use crate::{
    error::{Error, Result},
    listener::PeerIp,
    media::MediaService,
    services::Strangers,
};

pub fn routes(services: Services) -> Route {
    upload::routes(services.clone())
        .or(create::route(services.clone()))
        .unify()
        .or(config::routes(services.clone()))
        .unify()
        .or(download::routes(services.clone()))
        .unify()
        .or(thumbnail::routes(services.clone()))
        .unify()
        .or(preview_url::route(services))
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
/// serves them (404 once they are frozen), and gives what it says of
/// another server's media not yet fetched: a stranger may make us fetch
/// only as often as `Strangers` allows.
fn legacy_allowed(
    services: &Services,
) -> impl Filter<Extract = (Stranger,), Error = Rejection> + Clone {
    let open = services.media.config().legacy_unauthenticated;
    let strangers = services.strangers.clone();
    warp::ext::optional::<PeerIp>().and_then(move |from: Option<PeerIp>| {
        let strangers = strangers.clone();
        async move {
            if open {
                Ok(Stranger { strangers, from })
            } else {
                Err(warp::reject::custom(Error::not_found(
                    "unauthenticated media is frozen here: use /_matrix/client/v1/media",
                )))
            }
        }
    })
}

/// An unauthenticated asker.
pub(super) struct Stranger {
    strangers: Strangers,
    from: Option<PeerIp>,
}

impl Stranger {
    /// Refuses (429) a stranger's request that would make us fetch
    /// another server's media beyond their allowance.
    fn may_cause_fetch(
        &self,
        media: &MediaService,
        server: &ServerName,
        media_id: &str,
    ) -> Result<()> {
        if server == media.server_name() || media.has(server, media_id)? {
            return Ok(());
        }
        self.strangers.take(self.from)
    }
}
