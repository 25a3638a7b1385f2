//! `GET /sync`. Spec: client-server-api "Syncing"; sync.yaml.

use std::time::Duration;

use warp::Filter;

use crate::{
    client::{respond, session, v3, Route, Services},
    error::{Error, Result},
    http_util::raw_query,
    request::param,
    store::accounts::Session,
    sync::{Filter as SyncFilter, SyncRequest, Token},
};

pub fn route(services: Services) -> Route {
    v3().and(warp::path!("sync"))
        .and(warp::get())
        .and(session(services.accounts.clone()))
        .and(raw_query())
        .then(move |session: Session, query: String| {
            let services = services.clone();
            respond(async move {
                let request = parse(&services, &session, &query)?;
                // Polling marks the user online unless asked otherwise,
                // and keeps them so while it lasts.
                let state = match param(&query, "set_presence").as_deref() {
                    None | Some("online") => Some("online"),
                    Some("unavailable") => Some("unavailable"),
                    Some("offline") => None,
                    Some(other) => {
                        return Err(Error::invalid_param(format!(
                            "set_presence {other:?} is not online, unavailable or offline"
                        )))
                    }
                };
                let _syncing = state
                    .map(|state| services.edus.syncing(&session.user_id, state))
                    .transpose()?;
                services.sync.sync(&session, request).await
            })
        })
        .boxed()
}

/// `?timeout=` in milliseconds (none: answer at once).
pub(super) fn timeout(query: &str) -> Result<Duration> {
    match param(query, "timeout") {
        Some(ms) => Ok(Duration::from_millis(ms.parse().map_err(|_| {
            Error::invalid_param(format!("timeout {ms:?} is not a number"))
        })?)),
        None => Ok(Duration::ZERO),
    }
}

fn parse(services: &Services, session: &Session, query: &str) -> Result<SyncRequest> {
    let since = param(query, "since")
        .map(|t| Token::parse(&t))
        .transpose()?;
    let timeout = timeout(query)?;
    // A filter ID, or the filter itself as JSON (as Synapse, whatever
    // starts with `{`).
    let filter = match param(query, "filter") {
        None => SyncFilter::default(),
        Some(inline) if inline.trim_start().starts_with('{') => {
            let value: serde_json::Value = serde_json::from_str(&inline)
                .map_err(|e| Error::not_json(format!("filter: {e}")))?;
            SyncFilter::parse(&value)?
        }
        Some(id) => SyncFilter::parse(&services.accounts.filter(&session.user_id, &id)?)?,
    };
    Ok(SyncRequest {
        since,
        timeout,
        full_state: param(query, "full_state").is_some_and(|v| v == "true"),
        filter,
    })
}
