use std::sync::Arc;

use bytes::Bytes;
use http::Method;
use ruma::OwnedServerName;
use serde::Deserialize;
use warp::{filters::BoxedFilter, reply::Response, Filter, Rejection};

use super::token::tokens_match;
use crate::{
    backup::BackupService,
    error::{Error, Result},
    http_util::{body_limited, ok_json, parse_json, reply},
    keys::KeyService,
    net::https::HttpsClient,
};

pub use crate::services::Services;

fn admin_auth(token: Arc<str>) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::header::optional::<String>("authorization")
        .and_then(move |header: Option<String>| {
            let token = token.clone();
            async move {
                match header.as_deref().and_then(|h| h.strip_prefix("Bearer ")) {
                    Some(given) if tokens_match(given, &token) => Ok(()),
                    Some(_) => Err(warp::reject::custom(Error::unknown_token(
                        "admin token is wrong",
                    ))),
                    None => Err(warp::reject::custom(Error::new(
                        http::StatusCode::UNAUTHORIZED,
                        "M_MISSING_TOKEN",
                        "admin API needs Authorization: Bearer <data_dir/admin.token>",
                    ))),
                }
            }
        })
        .untuple_one()
}

pub fn routes(ctx: Services) -> BoxedFilter<(Response,)> {
    let base = warp::path("_hearth")
        .and(warp::path("admin"))
        .and(warp::path("v1"))
        .and(admin_auth(ctx.admin_token.clone()));
    let keys = ctx.keys.clone();
    let rotate = warp::path!("keys" / "rotate")
        .and(warp::post())
        .map(move || {
            reply(
                keys.rotate()
                    .map(|key_id| ok_json(&serde_json::json!({ "key_id": key_id }))),
            )
        });
    let keys = ctx.keys.clone();
    let sign = warp::path!("federation" / "sign")
        .and(warp::post())
        .and(body_limited())
        .map(move |body: Bytes| reply(sign_request(&keys, &body)));
    let (sender, inbound) = (ctx.sender.clone(), ctx.inbound.clone());
    let status = warp::path!("federation" / "status")
        .and(warp::get())
        .map(move || {
            reply(sender.status().map(|destinations| {
                ok_json(&serde_json::json!({
                    "destinations": destinations,
                    "inbound": { "staged_transactions": inbound.staged_now() },
                }))
            }))
        });
    let client = ctx.client.clone();
    let retry = warp::path!("federation" / "retry")
        .and(warp::post())
        .and(body_limited())
        .map(move |body: Bytes| reply(retry_destination(&client, &body)));
    let backup = warp::path!("backup").and(backup_action(ctx.backups.clone(), take_backup));
    let export = warp::path!("export").and(backup_action(ctx.backups.clone(), export_to));
    let users = super::users::routes(ctx.accounts.clone(), ctx.membership.clone());
    let rooms = super::rooms::routes(ctx.rooms.clone(), ctx.membership.clone());
    let edus = super::edus::routes(ctx.edus.clone());
    let media = super::media::routes(ctx.media.clone());
    let reports = super::reports::routes(ctx.reports.clone());
    let push = super::push::routes(ctx.push.clone());
    let appservices = super::appservices::routes(ctx.appservices.clone());
    let request = warp::path!("federation" / "request")
        .and(warp::post())
        .and(body_limited())
        .then(move |body: Bytes| {
            let ctx = ctx.clone();
            async move { reply(send_request(&ctx, &body).await) }
        });
    base.and(
        rotate
            .or(sign)
            .unify()
            .or(request)
            .unify()
            .or(status)
            .unify()
            .or(retry)
            .unify()
            .or(edus)
            .unify()
            .or(media)
            .unify()
            .or(reports)
            .unify()
            .or(push)
            .unify()
            .or(appservices)
            .unify()
            .or(rooms)
            .unify()
            .or(users)
            .unify()
            .or(backup)
            .unify()
            .or(export)
            .unify(),
    )
    .boxed()
}

/// `POST /_hearth/admin/v1/federation/retry`: forgets a destination's
/// failures, so its queue is sent now rather than at its next retry time
/// (for an operator who knows it is back; Synapse has the same as
/// `reset_connection`).
fn retry_destination(client: &HttpsClient, body: &[u8]) -> Result<Response> {
    #[derive(Deserialize)]
    struct Retry {
        destination: OwnedServerName,
    }
    let Retry { destination } = parse_json(body)?;
    let was_failing = client.backoff().forget(&destination);
    Ok(ok_json(
        &serde_json::json!({ "destination": destination, "was_failing": was_failing }),
    ))
}

/// A POST whose JSON body `action` carries out with the backup service.
fn backup_action<F, Fut>(backups: BackupService, action: F) -> BoxedFilter<(Response,)>
where
    F: Fn(BackupService, Bytes) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Response>> + Send,
{
    warp::post()
        .and(body_limited())
        .then(move |body: Bytes| {
            let (backups, action) = (backups.clone(), action.clone());
            async move { reply(action(backups, body).await) }
        })
        .boxed()
}

/// `POST /_hearth/admin/v1/backup` `{"dir": "/absolute/path"}`: takes a
/// backup into `dir` (new or empty) and answers what it holds once it is
/// checked.
async fn take_backup(backups: BackupService, body: Bytes) -> Result<Response> {
    #[derive(Deserialize)]
    struct Backup {
        dir: std::path::PathBuf,
    }
    let Backup { dir } = parse_json(&body)?;
    if !dir.is_absolute() {
        return Err(Error::invalid_param("dir must be an absolute path"));
    }
    crate::backup::usable_target(&dir).map_err(Error::invalid_param)?;
    let report = backups.take(&dir).await.map_err(Error::internal)?;
    Ok(ok_json(&report))
}

/// `POST /_hearth/admin/v1/export` `{"file": "/absolute/path"}`: writes
/// the whole server to `file` (see `backup::export`) → `{files, records}`.
async fn export_to(backups: BackupService, body: Bytes) -> Result<Response> {
    #[derive(Deserialize)]
    struct Export {
        file: std::path::PathBuf,
    }
    let Export { file } = parse_json(&body)?;
    if !file.is_absolute() || file.file_name().is_none() {
        return Err(Error::invalid_param(
            "file must be an absolute path to a file",
        ));
    }
    if file.exists() {
        return Err(Error::invalid_param(format!(
            "{} exists already",
            file.display()
        )));
    }
    let moved = backups.export(&file).await.map_err(Error::internal)?;
    Ok(ok_json(&moved))
}

/// A request to sign or send on the server's behalf.
#[derive(Deserialize)]
struct OutboundRequest {
    destination: OwnedServerName,
    method: String,
    /// Path and query, exactly as they will be sent.
    uri: String,
    content: Option<serde_json::Value>,
}

impl OutboundRequest {
    fn parse(body: &[u8]) -> Result<(Self, Method, Option<Vec<u8>>)> {
        let request: Self = parse_json(body)?;
        let method = Method::from_bytes(request.method.as_bytes()).map_err(|_| {
            Error::invalid_param(format!("{:?} is not an HTTP method", request.method))
        })?;
        if !request.uri.starts_with('/') {
            return Err(Error::invalid_param("uri must start with /"));
        }
        let content = request.content.as_ref().map(|c| c.to_string().into_bytes());
        Ok((request, method, content))
    }
}

/// `POST /_hearth/admin/v1/federation/sign`: the `Authorization` header
/// this server would send, like Synapse's federation_client script.
fn sign_request(keys: &KeyService, body: &[u8]) -> Result<Response> {
    let (request, method, content) = OutboundRequest::parse(body)?;
    let header = keys.authorization(
        &request.destination,
        &method,
        &request.uri,
        content.as_deref().unwrap_or_default(),
    )?;
    Ok(ok_json(&serde_json::json!({ "authorization": header })))
}

/// `POST /_hearth/admin/v1/federation/request`: sends a signed request
/// and reports what the destination answered.
async fn send_request(ctx: &Services, body: &[u8]) -> Result<Response> {
    let (request, method, content) = OutboundRequest::parse(body)?;
    let header = ctx.keys.authorization(
        &request.destination,
        &method,
        &request.uri,
        content.as_deref().unwrap_or_default(),
    )?;
    let response = ctx
        .client
        .request(
            &request.destination,
            method,
            &request.uri,
            content,
            Some(header),
        )
        .await
        .map_err(|e| Error::remote(e.to_string()))?;
    let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap_or_else(|_| {
        serde_json::Value::String(String::from_utf8_lossy(&response.body).into_owned())
    });
    Ok(ok_json(
        &serde_json::json!({ "status": response.status.as_u16(), "body": body }),
    ))
}
