//! `POST /rooms/{roomId}/report/{eventId}`, `POST /rooms/{roomId}/report`
//! and `POST /users/{userId}/report`: content reported to the admin.
//! Spec: client-server-api "Reporting Content"; report_content.yaml.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use warp::Filter;

use crate::{
    client::{body, respond, session, v3, Route, Services},
    http_util::body_limited,
    reports::Subject,
    request::{event_id, room_id, user_id},
    store::accounts::Session,
};

#[derive(Deserialize)]
struct Reason {
    #[serde(default)]
    reason: Option<String>,
}

/// What the path names.
enum Target {
    Event(String, String),
    Room(String),
    User(String),
}

pub fn route(services: Services) -> Route {
    let event = warp::path!("rooms" / String / "report" / String).map(Target::Event);
    let room = warp::path!("rooms" / String / "report").map(Target::Room);
    let user = warp::path!("users" / String / "report").map(Target::User);
    v3().and(event.or(room).unify().or(user).unify())
        .and(warp::post())
        .and(session(services.accounts.clone()))
        .and(body_limited())
        .then(move |target: Target, session: Session, bytes: Bytes| {
            let services = services.clone();
            respond(async move {
                services.user_limits.message(&session.user_id)?;
                let reason = body::<Reason>(&bytes)?.reason.unwrap_or_default();
                let reports = &services.reports;
                let reporter = &session.user_id;
                match target {
                    Target::Event(room, event) => {
                        let (room, event) = (room_id(&room)?, event_id(&event)?);
                        reports
                            .report(reporter, Subject::Event(&room, &event), &reason)
                            .await?
                    }
                    Target::Room(room) => {
                        let room = room_id(&room)?;
                        reports
                            .report(reporter, Subject::Room(&room), &reason)
                            .await?
                    }
                    Target::User(user) => {
                        let user = user_id(&user)?;
                        reports
                            .report(reporter, Subject::User(&user), &reason)
                            .await?
                    }
                }
                Ok(json!({}))
            })
        })
        .boxed()
}
