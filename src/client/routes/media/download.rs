//! `GET /_matrix/client/v1/media/download/{serverName}/{mediaId}[/{fileName}]`
//! and the deprecated unauthenticated `/_matrix/media/v3/download/…`:
//! the file, streamed from disk (fetched from its server first when it
//! is another's). Spec: client-server-api "Content repository";
//! authed-content-repo.yaml, content-repo.yaml.

use ruma::OwnedServerName;
use warp::{reply::Response, Filter};

use super::{client_v1, legacy_allowed, media_v3, Stranger};
use crate::{
    client::{session, Route, Services},
    error::Result,
    http_util::{media::file_response, percent_decode, raw_query, reply},
    media::{Fetch, MediaService},
    request::{id, media_id, Query},
    store::accounts::Session,
};

/// `{serverName}/{mediaId}` as they arrived in the path.
pub(super) fn target(server: &str, media: &str) -> Result<(OwnedServerName, String)> {
    Ok((id("serverName", server)?, media_id(media)?))
}

/// How long to wait and whether to fetch, from the query.
pub(super) fn fetch(query: &Query, legacy: bool) -> Fetch {
    let allow_remote = !legacy || query.get("allow_remote") != Some("false");
    Fetch::new(
        allow_remote,
        query.get("timeout_ms").and_then(|t| t.parse().ok()),
    )
}

async fn download(
    media: &MediaService,
    (server, media_id): (String, String),
    filename: Option<String>,
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
        let found = media
            .download(&server, &media_id, fetch(&query, legacy))
            .await?;
        Ok(file_response(&found.file(filename.as_deref())))
    };
    reply(result.await)
}

pub fn routes(services: Services) -> Route {
    let authed = client_v1()
        .and(warp::path("download"))
        .and(path())
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .map(|path, _: Session| path);
    let legacy = media_v3()
        .and(warp::path("download"))
        .and(path())
        .and(warp::get())
        .and(legacy_allowed(&services));
    let media = services.media.clone();
    let authed = authed.and(raw_query()).then(move |(ids, name), query| {
        let media = media.clone();
        async move { download(&media, ids, name, query, None).await }
    });
    let media = services.media.clone();
    let legacy = legacy
        .and(raw_query())
        .then(move |(ids, name), stranger, query| {
            let media = media.clone();
            async move { download(&media, ids, name, query, Some(stranger)).await }
        });
    authed.or(legacy).unify().boxed()
}

type Target = ((String, String), Option<String>);

/// `{serverName}/{mediaId}` and the optional `{fileName}`.
fn path() -> impl Filter<Extract = (Target,), Error = warp::Rejection> + Clone {
    let named = warp::path!(String / String / String)
        .map(|server, media, name: String| ((server, media), Some(percent_decode(&name))));
    let plain = warp::path!(String / String).map(|server, media| ((server, media), None));
    named.or(plain).unify()
}
