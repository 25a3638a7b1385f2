//! `GET /_matrix/federation/v1/media/download/{mediaId}` and
//! `/media/thumbnail/{mediaId}`: our media for another server, as
//! multipart/mixed (an empty JSON part, then the file).
//! Spec: server-server-api.md "Content Repository"; content_repository.yaml.

use warp::{filters::BoxedFilter, reply::Response, Filter};

use super::{admitted, Services};
use crate::{
    federation::auth::Authenticated,
    http_util::{media::multipart_response, raw_query, reply},
    media::Fetch,
    request::{media_id, thumbnail_size, Query},
};

pub fn routes(services: Services) -> BoxedFilter<(Response,)> {
    let download_services = services.clone();
    let download = warp::path!("_matrix" / "federation" / "v1" / "media" / "download" / String)
        .and(warp::get())
        .and(admitted(&services))
        .and(raw_query())
        .then(move |media: String, _: Authenticated, query: String| {
            let services = download_services.clone();
            async move {
                let result = async {
                    let media_id = media_id(&media)?;
                    let media = &services.media;
                    let fetch = local_only(&query);
                    media.download(media.server_name(), &media_id, fetch).await
                };
                reply(
                    result
                        .await
                        .map(|found| multipart_response(&found.file(None))),
                )
            }
        });
    let thumbnail = warp::path!("_matrix" / "federation" / "v1" / "media" / "thumbnail" / String)
        .and(warp::get())
        .and(admitted(&services))
        .and(raw_query())
        .then(move |media: String, _: Authenticated, query: String| {
            let services = services.clone();
            async move {
                let result = async {
                    let media_id = media_id(&media)?;
                    let size = thumbnail_size(&Query::parse(&query))?;
                    let media = &services.media;
                    let fetch = local_only(&query);
                    media
                        .thumbnail(media.server_name(), &media_id, size, fetch)
                        .await
                };
                reply(
                    result
                        .await
                        .map(|found| multipart_response(&found.file(None))),
                )
            }
        });
    download.or(thumbnail).unify().boxed()
}

/// Only our own media is served to other servers, waiting as asked.
fn local_only(query: &str) -> Fetch {
    let query = Query::parse(query);
    Fetch::new(false, query.get("timeout_ms").and_then(|t| t.parse().ok()))
}
