//! What this server asks of application services: whether a user or an
//! alias in their namespace exists (asked before answering "unknown"),
//! their third-party protocols, and pings.
//! Spec: application-service-api.md "Querying", "Third-party networks",
//! "Pinging".

use std::time::Instant;

use http::{Method, StatusCode};
use ruma::{RoomAliasId, UserId};
use serde_json::{json, Value};

use super::AppserviceService;
use crate::config::appservices::Appservice;

/// Why a ping failed, as the client endpoint reports it.
#[derive(Debug)]
pub enum PingError {
    /// No such registration, or none with a URL.
    Unknown,
    /// The application service answered, with an error.
    Answered(StatusCode, String),
    /// No answer in time.
    Timeout,
    /// No connection.
    Unreachable(String),
}

impl AppserviceService {
    /// Pings `appservice` (`POST /_matrix/app/v1/ping`): the round trip
    /// in ms. A success means it is up: its queue is sent at once.
    pub async fn ping(&self, id: &str, txn: Option<&str>) -> Result<u64, PingError> {
        let appservice = self
            .registered
            .get(id)
            .filter(|a| a.url.is_some())
            .ok_or(PingError::Unknown)?
            .clone();
        let body = match txn {
            Some(txn) => json!({ "transaction_id": txn }),
            None => json!({}),
        };
        let started = Instant::now();
        let answer = self
            .call(
                &appservice,
                Method::POST,
                "/_matrix/app/v1/ping",
                Some(body.to_string().into()),
            )
            .await;
        let took = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match answer {
            Ok((status, _)) if status.is_success() => {
                self.came_back(id);
                Ok(took)
            }
            Ok((status, body)) => Err(PingError::Answered(
                status,
                String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
            )),
            Err(e) if e.contains("took more than") => Err(PingError::Timeout),
            Err(e) => Err(PingError::Unreachable(e)),
        }
    }

    /// Whether an application service claiming `user` says it exists
    /// (`GET /_matrix/app/v1/users/{userId}`); it registers the user
    /// before answering 200.
    pub async fn user_exists(&self, user: &UserId) -> bool {
        for appservice in self.claimants(|a| a.claims_user(user)) {
            let path = format!("/_matrix/app/v1/users/{}", encode(user.as_str()));
            if self.asked(&appservice, &path).await.is_some() {
                return true;
            }
        }
        false
    }

    /// Whether an application service claiming `alias` created it
    /// (`GET /_matrix/app/v1/rooms/{roomAlias}`), in which case it exists now.
    pub async fn alias_exists(&self, alias: &RoomAliasId) -> bool {
        for appservice in self.claimants(|a| a.claims_alias(alias)) {
            let path = format!("/_matrix/app/v1/rooms/{}", encode(alias.as_str()));
            if self.asked(&appservice, &path).await.is_some() {
                return true;
            }
        }
        false
    }

    /// Every protocol the registrations name, with what the application
    /// service that serves it says of it (`{}` when it does not answer).
    pub async fn protocols(&self) -> serde_json::Map<String, Value> {
        let mut found = serde_json::Map::new();
        for appservice in self.claimants(|a| !a.protocols.is_empty()) {
            for protocol in &appservice.protocols {
                if found.contains_key(protocol) {
                    continue;
                }
                let path = format!("/_matrix/app/v1/thirdparty/protocol/{}", encode(protocol));
                let answer = self.asked(&appservice, &path).await;
                let answer = answer.filter(Value::is_object).unwrap_or_else(|| {
                    json!({"user_fields": [], "location_fields": [], "icon": "", "field_types": {}, "instances": []})
                });
                found.insert(protocol.clone(), answer);
            }
        }
        found
    }

    /// A third-party lookup (`kind`: `location` or `user`) in
    /// `protocol`, asked of the application service serving it; without a
    /// protocol (a reverse lookup by alias or user ID), of each serving
    /// any. What they found, together.
    pub async fn thirdparty(&self, kind: &str, protocol: Option<&str>, query: &str) -> Vec<Value> {
        let (asked, mut path) = match protocol {
            Some(protocol) => (
                self.claimants(|a| a.protocols.iter().any(|p| p == protocol))
                    .into_iter()
                    .take(1)
                    .collect(),
                format!("/_matrix/app/v1/thirdparty/{kind}/{}", encode(protocol)),
            ),
            None => (
                self.claimants(|a| !a.protocols.is_empty()),
                format!("/_matrix/app/v1/thirdparty/{kind}"),
            ),
        };
        if !query.is_empty() {
            path = format!("{path}?{query}");
        }
        let mut found = Vec::new();
        for appservice in asked {
            if let Some(Value::Array(list)) = self.asked(&appservice, &path).await {
                found.extend(list);
            }
        }
        found
    }

    fn claimants(&self, test: impl Fn(&Appservice) -> bool) -> Vec<std::sync::Arc<Appservice>> {
        self.registered
            .all()
            .iter()
            .filter(|a| a.url.is_some() && test(a))
            .cloned()
            .collect()
    }

    /// A GET answered 200 with JSON: the JSON.
    async fn asked(&self, appservice: &Appservice, path: &str) -> Option<Value> {
        match self.call(appservice, Method::GET, path, None).await {
            Ok((status, body)) if status.is_success() => serde_json::from_slice(&body).ok(),
            Ok(_) => None,
            Err(error) => {
                tracing::debug!(appservice = %appservice.id, %error, "query failed");
                None
            }
        }
    }
}

/// A path segment, percent-encoded.
fn encode(segment: &str) -> String {
    crate::http_util::percent_encode(segment)
}
