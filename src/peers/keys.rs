//! End-to-end encryption keys of another server's users.
//! Spec: server-server-api.md "End-to-End Encryption".

use http::Method;
use ruma::ServerName;
use serde_json::Value;

use super::Peers;
use crate::error::Result;

impl Peers {
    /// `POST /v1/user/keys/query` with `{"device_keys": ...}`.
    pub async fn user_keys_query(&self, server: &ServerName, body: &Value) -> Result<Value> {
        let uri = "/_matrix/federation/v1/user/keys/query";
        self.call(server, Method::POST, uri, Some(body)).await
    }

    /// `POST /v1/user/keys/claim` with `{"one_time_keys": ...}`.
    pub async fn user_keys_claim(&self, server: &ServerName, body: &Value) -> Result<Value> {
        let uri = "/_matrix/federation/v1/user/keys/claim";
        self.call(server, Method::POST, uri, Some(body)).await
    }
}
