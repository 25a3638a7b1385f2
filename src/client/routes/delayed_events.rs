//! MSC4140's delayed events, as Element Call drives them:
//! `GET /_matrix/client/unstable/org.matrix.msc4140/delayed_events` (the
//! user's waiting ones), `POST …/delayed_events/{delayId}` with an
//! `action`, and `POST …/delayed_events/{delayId}/{restart|cancel|send}`.
//! Scheduling is `send`/`state` with `org.matrix.msc4140.delay`.

use bytes::Bytes;
use serde_json::{json, Value};
use warp::Filter;

use crate::{
    client::{body, respond, session, Route, Services},
    delayed::Action,
    error::{Error, Result},
    http_util::{body_limited, percent_decode},
    store::accounts::Session,
};

pub fn routes(services: Services) -> Route {
    let base = warp::path!(
        "_matrix" / "client" / "unstable" / "org.matrix.msc4140" / "delayed_events" / ..
    );
    let list_services = services.clone();
    let list = base
        .and(warp::path::end())
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .then(move |session: Session| {
            let services = list_services.clone();
            respond(async move {
                let waiting = services.delayed.waiting(&session.user_id)?;
                Ok(json!({ "delayed_events": waiting }))
            })
        });
    let by_body_services = services.clone();
    let by_body = base
        .and(warp::path!(String))
        .and(warp::post())
        .and(session(services.accounts.clone()))
        .and(body_limited())
        .then(move |id: String, session: Session, bytes: Bytes| {
            let services = by_body_services.clone();
            respond(async move {
                let request: Value = body(&bytes)?;
                let action = request["action"]
                    .as_str()
                    .ok_or_else(|| Error::missing_param("no action given"))?;
                act(&services, &session, &id, action).await
            })
        });
    let by_path = base
        .and(warp::path!(String / String))
        .and(warp::post())
        .and(session(services.accounts.clone()))
        .then(move |id: String, action: String, session: Session| {
            let services = services.clone();
            respond(async move { act(&services, &session, &id, &action).await })
        });
    list.or(by_body).unify().or(by_path).unify().boxed()
}

async fn act(services: &Services, session: &Session, id: &str, action: &str) -> Result<Value> {
    let action = Action::parse(action)?;
    services
        .delayed
        .act(&session.user_id, &percent_decode(id), action)
        .await?;
    Ok(json!({}))
}
