//! `POST /keys/upload`, `/keys/query`, `/keys/claim`, `GET /keys/changes`,
//! `POST /keys/device_signing/upload`, `/keys/signatures/upload`.
//! Spec: client-server-api "End-to-End Encryption"; keys.yaml,
//! cross_signing.yaml.

use bytes::Bytes;
use serde_json::{json, Map, Value};
use warp::Filter;

use crate::{
    client::{body, respond, session, v3, Route, Services},
    error::{Error, Result},
    http_util::{body_limited, raw_query},
    request::param,
    store::accounts::Session,
    sync::Token,
};

/// `POST /keys/{action}` with the session and JSON body.
fn post<F>(services: &Services, path: &'static [&'static str], handle: F) -> Route
where
    F: Fn(Services, Session, Value) -> futures_util::future::BoxFuture<'static, Result<Value>>
        + Clone
        + Send
        + Sync
        + 'static,
{
    let services = services.clone();
    // Older clients upload cross-signing keys and signatures under
    // `unstable/` (MSC1756's paths, as Synapse still serves them).
    let unstable = warp::path!("_matrix" / "client" / "unstable" / ..);
    let mut filter = v3().or(unstable).unify().and(warp::path("keys")).boxed();
    for segment in path {
        filter = filter.and(warp::path(*segment)).boxed();
    }
    filter
        .and(warp::path::end())
        .and(warp::post())
        .and(session(services.accounts.clone()))
        .and(body_limited())
        .then(move |session: Session, bytes: Bytes| {
            let services = services.clone();
            let handle = handle.clone();
            async move {
                respond(async move {
                    let request: Value = body(&bytes)?;
                    handle(services, session, request).await
                })
                .await
            }
        })
        .boxed()
}

fn map(value: &Value, field: &str) -> Result<Map<String, Value>> {
    match &value[field] {
        Value::Object(m) => Ok(m.clone()),
        Value::Null => Ok(Map::new()),
        _ => Err(Error::bad_json(format!("{field} must be an object"))),
    }
}

pub fn routes(services: Services) -> Route {
    use futures_util::FutureExt;
    let upload = post(&services, &["upload"], |s, session, request| {
        async move {
            // An application service's request names its device (MSC3202);
            // without one, there is no device to hold keys.
            if session.device_id == crate::accounts::appservice_auth::NO_DEVICE {
                return Err(crate::error::Error::missing_param(
                    "an application service uploads keys for a device: add ?device_id=",
                ));
            }
            s.e2ee
                .upload(&session.user_id, session.device_id.as_str(), &request)
        }
        .boxed()
    });
    let query = post(&services, &["query"], |s, session, request| {
        async move {
            s.e2ee
                .query(&session.user_id, &map(&request, "device_keys")?)
                .await
        }
        .boxed()
    });
    let claim = post(&services, &["claim"], |s, _, request| {
        async move { s.e2ee.claim(&map(&request, "one_time_keys")?).await }.boxed()
    });
    let cross_signing = post(
        &services,
        &["device_signing", "upload"],
        |s, session, request| {
            async move {
                s.e2ee.upload_cross_signing(&session.user_id, &request)?;
                Ok(json!({}))
            }
            .boxed()
        },
    );
    let signatures = post(
        &services,
        &["signatures", "upload"],
        |s, session, request| {
            async move { s.e2ee.upload_signatures(&session.user_id, &request) }.boxed()
        },
    );
    let e2ee = services.e2ee.clone();
    let changes = v3()
        .and(warp::path!("keys" / "changes"))
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .and(raw_query())
        .then(move |session: Session, query: String| {
            let e2ee = e2ee.clone();
            respond(async move {
                let position = |name: &str| -> Result<u64> {
                    let token = param(&query, name)
                        .ok_or_else(|| Error::missing_param(format!("{name} is required")))?;
                    Ok(Token::parse(&token)?.position)
                };
                let (changed, left) =
                    e2ee.changes(&session.user_id, position("from")?, position("to")?)?;
                Ok(json!({ "changed": changed, "left": left }))
            })
        });
    [upload, query, claim, cross_signing, signatures]
        .into_iter()
        .fold(changes.boxed(), |all, route| all.or(route).unify().boxed())
}
