//! `POST /_matrix/media/v1/create`: an `mxc://` URI reserved for an
//! upload that follows. Spec: client-server-api "Content repository";
//! content-repo.yaml.

use ruma::{api::client::media::create_mxc_uri, MilliSecondsSinceUnixEpoch};
use warp::Filter;

use super::upload::mxc;
use crate::{
    client::{session, typed, Route, Services},
    http_util::reply,
    store::accounts::Session,
};

pub fn route(services: Services) -> Route {
    let media = services.media.clone();
    warp::path!("_matrix" / "media" / "v1" / "create")
        .and(warp::post())
        .and(session(services.accounts.clone()))
        .map(move |session: Session| {
            reply(media.create(&session.user_id).and_then(|(uri, expires)| {
                let mut response = create_mxc_uri::v1::Response::new(mxc(&uri)?);
                response.unused_expires_at = Some(MilliSecondsSinceUnixEpoch(
                    expires.try_into().unwrap_or(ruma::UInt::MAX),
                ));
                Ok(typed(response))
            }))
        })
        .boxed()
}
