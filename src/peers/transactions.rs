//! Transactions: how PDUs and EDUs reach another server.
//! Spec: server-server-api.md "Transactions"; transactions.yaml.

use http::Method;
use ruma::ServerName;
use serde::de::IgnoredAny;

use super::Peers;
use crate::error::Result;
use crate::http_util::percent_encode;

impl Peers {
    /// `PUT /v1/send/{txnId}` with a transaction already in canonical
    /// JSON (spliced by the sender from stored PDUs, never re-serialised).
    pub async fn send_transaction(
        &self,
        destination: &ServerName,
        txn_id: &str,
        body: Vec<u8>,
    ) -> Result<()> {
        let uri = format!("/_matrix/federation/v1/send/{}", percent_encode(txn_id));
        self.call_canonical::<IgnoredAny>(destination, Method::PUT, &uri, body)
            .await
            .map(|_| ())
    }
}
