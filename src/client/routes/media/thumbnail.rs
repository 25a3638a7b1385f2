//! `GET /_matrix/client/v1/media/thumbnail/{serverName}/{mediaId}` and
//! the deprecated unauthenticated `/_matrix/media/v3/thumbnail/…`: a
//! thumbnail at one of the spec's sizes, made on first request.
//! Spec: client-server-api "Thumbnails"; authed-content-repo.yaml.

use warp::{reply::Response, Filter};

use super::{
    client_v1,
    download::{fetch, target},
    legacy_allowed, media_v3, Stranger,
};
use crate::{
    client::{session, Route, Services},
    http_util::{media::file_response, raw_query, reply},
    media::MediaService,
    request::{thumbnail_size, Query},
    store::accounts::Session,
};

async fn thumbnail(
    media: &MediaService,
    (server, media_id): (String, String),
    query: String,
    stranger: Option<Stranger>,
) -> Response {
    let query = Query::parse(&query);
    let legacy = stranger.is_some();
    let result = async {
        let (server, media_id) = target(&server, &media_id)?;
        if let Some(stranger) = &stranger {
            stranger.may_cause_fetch(media, &server, &media_id)?;
        }
        let size = thumbnail_size(&query)?;
        let found = media
            .thumbnail(&server, &media_id, size, fetch(&query, legacy))
            .await?;
        Ok(file_response(&found.file(None)))
    };
    reply(result.await)
}

pub fn routes(services: Services) -> Route {
    let media = services.media.clone();
    let authed = client_v1()
        .and(warp::path!("thumbnail" / String / String))
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .and(raw_query())
        .then(move |server, media_id, _: Session, query| {
            let media = media.clone();
            async move { thumbnail(&media, (server, media_id), query, None).await }
        });
    let media = services.media.clone();
    let legacy = media_v3()
        .and(warp::path!("thumbnail" / String / String))
        .and(warp::get())
        .and(legacy_allowed(&services))
        .and(raw_query())
        .then(move |server, media_id, stranger, query| {
            let media = media.clone();
            async move { thumbnail(&media, (server, media_id), query, Some(stranger)).await }
        });
    authed.or(legacy).unify().boxed()
}
