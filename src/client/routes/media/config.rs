//! `GET /_matrix/client/v1/media/config` (and the deprecated
//! `/_matrix/media/v3/config`): the largest upload.
//! Spec: client-server-api "Content repository"; authed-content-repo.yaml.

use ruma::api::client::authenticated_media::get_media_config;
use warp::Filter;

use super::{client_v1, media_v3};
use crate::{
    client::{session, typed, Route, Services},
    store::accounts::Session,
};

pub fn routes(services: Services) -> Route {
    let size = services.media.config().max_upload_size;
    let answer = move |_: Session| {
        typed(get_media_config::v1::Response::new(
            size.try_into().unwrap_or(ruma::UInt::MAX),
        ))
    };
    client_v1()
        .and(warp::path!("config"))
        .or(media_v3().and(warp::path!("config")))
        .unify()
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .map(answer)
        .boxed()
}
