//! `GET /pushers` and `POST /pushers/set`: the user's pushers, set,
//! replaced or deleted. Spec: client-server-api "Pushers"; pusher.yaml.

use bytes::Bytes;
use ruma::api::client::push::get_pushers::v3::Response;
use serde_json::{json, Value};
use warp::Filter;

use crate::{
    client::{body, respond, session, typed, v3, Route, Services},
    http_util::{body_limited, reply},
    store::accounts::Session,
};

pub fn routes(services: Services) -> Route {
    let push = services.push.clone();
    let list = v3()
        .and(warp::path!("pushers"))
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .map(move |session: Session| {
            reply(
                push.pushers_of(&session.user_id)
                    .map(|pushers| typed(Response::new(pushers))),
            )
        });
    let push = services.push.clone();
    let set = v3()
        .and(warp::path!("pushers" / "set"))
        .and(warp::post())
        .and(session(services.accounts.clone()))
        .and(body_limited())
        .then(move |session: Session, bytes: Bytes| {
            let push = push.clone();
            respond(async move {
                let request: Value = body(&bytes)?;
                push.set(&session.user_id, Some(session.device_id.as_str()), &request)
                    .await?;
                Ok(json!({}))
            })
        });
    list.or(set).unify().boxed()
}
