//! Federation requests signed by a server ahead of sending, so that the
//! test can send them while that server is frozen or gone.

use serde_json::{json, Value};

use super::{Hearth, TestCa};

/// A request from `from`'s server to `to`, with its `X-Matrix` header.
pub struct Presigned {
    method: String,
    uri: String,
    authorization: String,
    body: Option<Value>,
}

impl Presigned {
    pub async fn new(
        from: &Hearth,
        to: &Hearth,
        method: &str,
        uri: &str,
        body: Option<Value>,
    ) -> Self {
        let (status, signed) = from
            .admin(
                "federation/sign",
                json!({"destination": to.server_name, "method": method, "uri": uri, "content": body}),
            )
            .await;
        assert_eq!(status, 200, "{signed}");
        Self {
            method: method.to_owned(),
            uri: uri.to_owned(),
            authorization: signed["authorization"].as_str().expect("header").to_owned(),
            body,
        }
    }

    /// A transaction of `pdus` and no EDUs.
    pub async fn transaction(from: &Hearth, to: &Hearth, txn: &str, pdus: Value) -> Self {
        let body = json!({"origin": from.server_name, "origin_server_ts": 1,
                          "pdus": pdus, "edus": []});
        let uri = format!("/_matrix/federation/v1/send/{txn}");
        Self::new(from, to, "PUT", &uri, Some(body)).await
    }

    pub async fn send(&self, to: &Hearth, ca: &TestCa) -> (u16, Value) {
        let mut headers = vec![("authorization", self.authorization.as_str())];
        if self.body.is_some() {
            headers.push(("content-type", "application/json"));
        }
        to.federation_request(
            ca,
            &self.method,
            &self.uri,
            &headers,
            self.body.as_ref().map(|b| b.to_string().into_bytes()),
        )
        .await
    }
}
