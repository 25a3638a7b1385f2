//! `POST /_matrix/media/v3/upload` and `PUT
//! /_matrix/media/v3/upload/{serverName}/{mediaId}` (to an ID made by
//! `/create`): the body is streamed to disk, never held in memory, and
//! refused at the first byte over `media.max_upload_size`.
//! Spec: client-server-api "Content repository"; content-repo.yaml.

use ruma::{api::client::media::create_content, OwnedMxcUri, OwnedServerName};
use serde_json::json;
use warp::Filter;

use super::media_v3;
use crate::{
    client::{session, typed, Route, Services},
    error::{Error, Result},
    http_util::{ok_json, raw_query, reply},
    media::Upload,
    request::{id, media_id, Query},
    store::accounts::Session,
};

/// What the request says of its body.
fn upload() -> impl Filter<Extract = (Upload,), Error = warp::Rejection> + Clone {
    warp::header::optional::<String>("content-type")
        .and(warp::header::optional::<u64>("content-length"))
        .and(raw_query())
        .map(|content_type, declared, query: String| Upload {
            content_type,
            filename: Query::parse(&query).get("filename").map(str::to_owned),
            declared,
        })
}

pub fn routes(services: Services) -> Route {
    let media = services.media.clone();
    let post = media_v3()
        .and(warp::path!("upload"))
        .and(warp::post())
        .and(session(services.accounts.clone()))
        .and(upload())
        .and(warp::body::stream())
        .then(move |session: Session, upload: Upload, body| {
            let media = media.clone();
            async move {
                let uri = media.upload(&session.user_id, upload, body).await;
                reply(uri.and_then(|uri| Ok(typed(create_content::v3::Response::new(mxc(&uri)?)))))
            }
        });
    let media = services.media.clone();
    let put = media_v3()
        .and(warp::path!("upload" / String / String))
        .and(warp::put())
        .and(session(services.accounts.clone()))
        .and(upload())
        .and(warp::body::stream())
        .then(
            move |server: String, media_id_text: String, session: Session, upload: Upload, body| {
                let media = media.clone();
                async move {
                    let target: Result<(OwnedServerName, String)> =
                        id("serverName", &server).and_then(|s| Ok((s, media_id(&media_id_text)?)));
                    let done = match target {
                        Ok((server, media_id)) => {
                            media
                                .upload_to(&session.user_id, &server, &media_id, upload, body)
                                .await
                        }
                        Err(e) => Err(e),
                    };
                    reply(done.map(|()| ok_json(&json!({}))))
                }
            },
        );
    post.or(put).unify().boxed()
}

pub(super) fn mxc(uri: &str) -> Result<OwnedMxcUri> {
    let uri = OwnedMxcUri::from(uri);
    uri.validate()
        .map_err(|e| Error::internal(format!("made an invalid mxc URI {uri}: {e}")))?;
    Ok(uri)
}
