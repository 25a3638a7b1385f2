//! `GET /_matrix/client/v1/media/preview_url` (and the deprecated
//! `/_matrix/media/v3/preview_url`, authenticated too): a link's
//! OpenGraph fields, when `media.url_previews` is on.
//! Spec: client-server-api "Content repository"; authed-content-repo.yaml.

use warp::Filter;

use super::{client_v1, media_v3};
use crate::{
    client::{respond, session, Route, Services},
    http_util::raw_query,
    request::Query,
    store::accounts::Session,
};

pub fn route(services: Services) -> Route {
    let media = services.media.clone();
    client_v1()
        .and(warp::path!("preview_url"))
        .or(media_v3().and(warp::path!("preview_url")))
        .unify()
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .and(raw_query())
        .then(move |_: Session, query: String| {
            let media = media.clone();
            respond(async move {
                let query = Query::parse(&query);
                media.preview(query.required("url")?).await
            })
        })
        .boxed()
}
