//! `POST /user/{userId}/filter` and `GET /user/{userId}/filter/{filterId}`.
//! Spec: client-server-api "Filtering"; filter.yaml.

use bytes::Bytes;
use serde_json::{json, Value};
use warp::Filter;

use crate::{
    client::{body, respond, session, v3, Route, Services},
    error::{Error, Result},
    http_util::body_limited,
    request::user_id,
    store::accounts::Session,
};

fn own(session: &Session, user: &str) -> Result<()> {
    if user_id(user)? != session.user_id {
        return Err(Error::forbidden("you can only use your own filters"));
    }
    Ok(())
}

pub fn routes(services: Services) -> Route {
    let accounts = services.accounts.clone();
    let create = v3()
        .and(warp::path!("user" / String / "filter"))
        .and(warp::post())
        .and(session(services.accounts.clone()))
        .and(body_limited())
        .then(move |user: String, session: Session, bytes: Bytes| {
            let accounts = accounts.clone();
            respond(async move {
                own(&session, &user)?;
                let filter: Value = body(&bytes)?;
                if !filter.is_object() {
                    return Err(Error::bad_json("a filter is a JSON object"));
                }
                // Refused now rather than at every sync that names it.
                crate::sync::Filter::parse(&filter)?;
                let id = rand::random::<u32>().to_string();
                accounts.put_filter(&session.user_id, &id, &filter)?;
                Ok(json!({ "filter_id": id }))
            })
        });
    let accounts = services.accounts.clone();
    let get = v3()
        .and(warp::path!("user" / String / "filter" / String))
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .then(move |user: String, id: String, session: Session| {
            let accounts = accounts.clone();
            respond(async move {
                own(&session, &user)?;
                accounts.filter(&session.user_id, &id)
            })
        });
    create.or(get).unify().boxed()
}
