//! `POST /_matrix/client/v1/appservice/{appserviceId}/ping`: an
//! application service asks the server to ping it, to check both
//! directions (bridges do at start). A success also sends it what
//! queued while it was away, at once.
//! Spec: application-service-api.md "Pinging"; client-server-api
//! "Application service ping".

use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use warp::Filter;

use crate::{
    appservices::PingError,
    client::{body, respond, session, Route, Services},
    error::{Error, Result},
    http_util::{body_limited, percent_decode},
    store::accounts::Session,
};

#[derive(Deserialize)]
struct PingRequest {
    transaction_id: Option<String>,
}

pub fn route(services: Services) -> Route {
    warp::path!("_matrix" / "client" / "v1" / "appservice" / String / "ping")
        .and(warp::post())
        .and(session(services.accounts.clone()))
        .and(body_limited())
        .then(move |id: String, session: Session, bytes: Bytes| {
            let services = services.clone();
            respond(async move { ping(&services, &percent_decode(&id), &session, &bytes).await })
        })
        .boxed()
}

async fn ping(services: &Services, id: &str, session: &Session, bytes: &Bytes) -> Result<Value> {
    if session.appservice.as_deref() != Some(id) {
        return Err(Error::forbidden(format!(
            "only the application service {id} may ask for its ping"
        )));
    }
    let request: PingRequest = body(bytes)?;
    match services
        .appservices
        .ping(id, request.transaction_id.as_deref())
        .await
    {
        Ok(ms) => Ok(json!({ "duration_ms": ms })),
        Err(PingError::Unknown) => Err(Error::new(
            StatusCode::BAD_REQUEST,
            "M_URL_NOT_SET",
            format!("the application service {id} has no url"),
        )),
        Err(PingError::Answered(status, body)) => Err(Error::new(
            StatusCode::BAD_GATEWAY,
            "M_BAD_STATUS",
            format!("the application service answered {status}"),
        )
        .with_field("status", status.as_u16())
        .with_field("body", body)),
        Err(PingError::Timeout) => Err(Error::new(
            StatusCode::GATEWAY_TIMEOUT,
            "M_CONNECTION_TIMEOUT",
            "the application service did not answer in time",
        )),
        Err(PingError::Unreachable(why)) => Err(Error::new(
            StatusCode::BAD_GATEWAY,
            "M_CONNECTION_FAILED",
            format!("cannot reach the application service: {why}"),
        )),
    }
}
