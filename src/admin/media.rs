//! The media admin API (`hearth media …` through a running server):
//! `GET media/stats`, `POST media/purge_remote` (other servers' media not
//! downloaded for `older_than_secs`, default `media.remote_retention`),
//! `POST media/delete` (`{"uri": "mxc://…"}`: one item, ours or cached).

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use serde::Deserialize;
use warp::{filters::BoxedFilter, reply::Response, Filter};

use crate::{
    http_util::{body_limited, ok_json, parse_json, reply},
    media::MediaService,
    request::mxc,
};

pub fn routes(media: Arc<MediaService>) -> BoxedFilter<(Response,)> {
    let service = media.clone();
    let stats = warp::path!("media" / "stats")
        .and(warp::get())
        .map(move || reply(service.stats().map(|stats| ok_json(&stats))));
    let service = media.clone();
    let purge = warp::path!("media" / "purge_remote")
        .and(warp::post())
        .and(body_limited())
        .then(move |body: Bytes| {
            let media = service.clone();
            async move {
                #[derive(Deserialize)]
                struct Purge {
                    older_than_secs: Option<u64>,
                }
                let result = async {
                    let purge: Purge = parse_json(&body)?;
                    let older_than = purge
                        .older_than_secs
                        .map_or(media.config().remote_retention.0, Duration::from_secs);
                    media.purge_remote(older_than).await
                };
                reply(result.await.map(|purged| ok_json(&purged)))
            }
        });
    let delete = warp::path!("media" / "delete")
        .and(warp::post())
        .and(body_limited())
        .then(move |body: Bytes| {
            let media = media.clone();
            async move {
                #[derive(Deserialize)]
                struct Delete {
                    uri: String,
                }
                let result = async {
                    let Delete { uri } = parse_json(&body)?;
                    let (server, media_id) = mxc(&uri)?;
                    let bytes = media.delete(&server, &media_id).await?;
                    Ok(ok_json(&serde_json::json!({ "bytes": bytes })))
                };
                reply(result.await)
            }
        });
    stats.or(purge).unify().or(delete).unify().boxed()
}

/// What `hearth media …` does.
pub enum MediaAction {
    Stats,
    PurgeRemote { older_than: Option<Duration> },
    Delete { uri: String },
}

/// Carries out `action` on the stopped server's data directory, or
/// through the running server's admin API; what to print.
pub async fn cli(config: &crate::config::Config, action: MediaAction) -> Result<String, String> {
    use crate::store::{OpenError, Store};
    match Store::open(&config.data_dir) {
        Ok(store) => offline(config, &store, action).await,
        Err(OpenError::Locked) => online(config, action).await,
        Err(e) => Err(e.to_string()),
    }
}

async fn offline(
    config: &crate::config::Config,
    store: &crate::store::Store,
    action: MediaAction,
) -> Result<String, String> {
    use crate::media::{files::Files, retention};
    let files = Files::open(&config.data_dir).map_err(|e| e.to_string())?;
    let ours = config.server_name.as_str();
    let answer = match action {
        MediaAction::Stats => stats_text(
            &serde_json::to_value(store.media.stats(ours).map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?,
        ),
        MediaAction::PurgeRemote { older_than } => {
            let older_than = older_than.unwrap_or(config.media.remote_retention.0);
            let cutoff = crate::time::now_ms().saturating_sub(older_than.as_millis() as u64);
            let purged = retention::purge_remote(
                &store.media,
                &files,
                ours,
                cutoff,
                config.media.remote_cache_size,
            )
            .map_err(|e| e.message)?;
            purged_text(purged.items, purged.bytes)
        }
        MediaAction::Delete { uri } => {
            let (server, media_id) = mxc(&uri).map_err(|e| e.message)?;
            let at = crate::store::media::MediaKey {
                server: server.as_str(),
                media_id: &media_id,
            };
            match retention::delete(&store.media, &files, at).map_err(|e| e.message)? {
                Some(bytes) => format!("deleted {uri} ({bytes} bytes)"),
                None => return Err(format!("{uri}: no such media here")),
            }
        }
    };
    store.flush().await.map_err(|e| e.to_string())?;
    Ok(answer)
}

async fn online(config: &crate::config::Config, action: MediaAction) -> Result<String, String> {
    use super::client::ask_running;
    use http::Method;
    let (path, method, body) = match &action {
        MediaAction::Stats => ("stats", Method::GET, None),
        MediaAction::PurgeRemote { older_than } => (
            "purge_remote",
            Method::POST,
            Some(serde_json::json!({ "older_than_secs": older_than.map(|d| d.as_secs()) })),
        ),
        MediaAction::Delete { uri } => (
            "delete",
            Method::POST,
            Some(serde_json::json!({ "uri": uri })),
        ),
    };
    let (status, answer) = ask_running(
        config,
        method,
        &format!("/_hearth/admin/v1/media/{path}"),
        body,
    )
    .await?;
    if status != 200 {
        return Err(format!("the running server refused: {status} {answer}"));
    }
    Ok(match action {
        MediaAction::Stats => stats_text(&answer),
        MediaAction::PurgeRemote { .. } => purged_text(
            answer["items"].as_u64().unwrap_or_default(),
            answer["bytes"].as_u64().unwrap_or_default(),
        ),
        MediaAction::Delete { uri } => format!(
            "deleted {uri} ({} bytes)",
            answer["bytes"].as_u64().unwrap_or_default()
        ),
    })
}

fn stats_text(stats: &serde_json::Value) -> String {
    let n = |key: &str| stats[key].as_u64().unwrap_or_default();
    format!(
        "local: {} items, {} bytes\nremote (cached): {} items, {} bytes\nfiles on disk: {}",
        n("local_items"),
        n("local_bytes"),
        n("remote_items"),
        n("remote_bytes"),
        n("files"),
    )
}

fn purged_text(items: u64, bytes: u64) -> String {
    format!("dropped {items} cached remote item(s), {bytes} bytes")
}
