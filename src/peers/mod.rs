//! The one place that speaks to other servers: a typed call per
//! federation endpoint, each in the file of its spec section. Every
//! request is signed (X-Matrix), sent through the network layer
//! (discovery, IP policy, backoff), and its answer parsed; a Matrix error
//! from the other side becomes ours.
//!
//! Wire types are hearth's own serde structs rather than ruma's
//! `federation-api` types: PDUs stay `CanonicalJsonObject`s, which the
//! receive checks take as they are (ruma's `Box<RawValue>` would be parsed
//! a second time), and the sender's transactions are spliced canonical
//! bytes (see `delivery`).
//! Spec: server-server-api.md "Request Authentication".

mod events;
mod keys;
mod media;
mod membership;
mod query;
mod transactions;
pub mod version;

pub use events::{State, StateIds};
pub use media::RemoteMedia;
pub use membership::{Handshake, MakeAnswer, SendJoinAnswer, SendKnockAnswer, JOIN, KNOCK, LEAVE};
pub use query::{Hierarchy, Resolved};

use std::sync::Arc;

use http::Method;
use ruma::ServerName;
use serde::de::DeserializeOwned;

use crate::{error::Error, keys::KeyService, net::https::HttpsClient};

/// Signs, sends and reads requests to other servers.
pub struct Peers {
    keys: Arc<KeyService>,
    client: Arc<HttpsClient>,
}

/// Error codes another server may answer with that we pass on as they are.
const PASSED_ON: &[&str] = &[
    "M_FORBIDDEN",
    "M_NOT_FOUND",
    "M_INCOMPATIBLE_ROOM_VERSION",
    "M_UNSUPPORTED_ROOM_VERSION",
    "M_UNABLE_TO_AUTHORISE_JOIN",
    "M_UNABLE_TO_GRANT_JOIN",
    "M_BAD_JSON",
    "M_INVALID_PARAM",
    "M_UNRECOGNIZED",
    "M_LIMIT_EXCEEDED",
];

impl Peers {
    pub fn new(keys: Arc<KeyService>, client: Arc<HttpsClient>) -> Self {
        Self { keys, client }
    }

    pub fn server_name(&self) -> &ServerName {
        self.keys.server_name()
    }

    /// Sends a signed request and parses a 200 answer as `T`. Another
    /// server's Matrix error keeps its status and (known) errcode.
    async fn call<T: DeserializeOwned>(
        &self,
        destination: &ServerName,
        method: Method,
        uri: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<T, Error> {
        let body = body.map(|b| b.to_string().into_bytes());
        let authorization = self.keys.authorization(
            destination,
            &method,
            uri,
            body.as_deref().unwrap_or_default(),
        )?;
        self.send(destination, method, uri, body, authorization)
            .await
    }

    /// [`Self::call`] with a body that is canonical JSON already, signed
    /// without parsing it back (see [`KeyService::authorization_canonical`]).
    async fn call_canonical<T: DeserializeOwned>(
        &self,
        destination: &ServerName,
        method: Method,
        uri: &str,
        body: Vec<u8>,
    ) -> Result<T, Error> {
        let authorization = self
            .keys
            .authorization_canonical(destination, &method, uri, &body)?;
        self.send(destination, method, uri, Some(body), authorization)
            .await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        destination: &ServerName,
        method: Method,
        uri: &str,
        body: Option<Vec<u8>>,
        authorization: String,
    ) -> Result<T, Error> {
        let response = self
            .client
            .request(destination, method, uri, body, Some(authorization))
            .await
            .map_err(|e| Error::remote(e.to_string()))?;
        if response.status.is_success() {
            return serde_json::from_slice(&response.body).map_err(|e| {
                Error::remote(format!("{destination} answered {uri} with bad JSON: {e}"))
            });
        }
        Err(remote_error(destination, response.status, &response.body))
    }
}

fn remote_error(destination: &ServerName, status: http::StatusCode, body: &[u8]) -> Error {
    #[derive(serde::Deserialize)]
    struct MatrixError {
        errcode: String,
        #[serde(default)]
        error: String,
    }
    let parsed: Option<MatrixError> = serde_json::from_slice(body).ok();
    let message = match &parsed {
        Some(e) => format!("{destination} answered {status}: {} {}", e.errcode, e.error),
        None => format!("{destination} answered {status}"),
    };
    let known = parsed
        .as_ref()
        .and_then(|e| PASSED_ON.iter().find(|code| **code == e.errcode));
    match known {
        Some(code) if status.is_client_error() => Error::new(status, code, message),
        _ => Error::remote(message),
    }
}
