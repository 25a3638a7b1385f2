//! `PUT /_matrix/federation/v1/send/{txnId}`: a transaction of PDUs and EDUs.
//! Spec: server-server-api.md "Transactions"; transactions.yaml.

use std::collections::BTreeMap;

use ruma::{CanonicalJsonObject, OwnedEventId};
use serde::Deserialize;
use serde_json::{json, Value};
use warp::{filters::BoxedFilter, reply::Response, Filter};

use super::Services;
use crate::{
    error::{Error, Result},
    federation::auth::{authenticated, Authenticated},
    http_util::{json_response, parse_json, percent_decode, reply},
};

const MAX_PDUS: usize = 50;
const MAX_EDUS: usize = 100;

#[derive(Deserialize)]
struct Transaction {
    origin: String,
    #[serde(default)]
    pdus: Vec<CanonicalJsonObject>,
    #[serde(default)]
    edus: Vec<Value>,
}

pub fn route(services: Services) -> BoxedFilter<(Response,)> {
    warp::path!("_matrix" / "federation" / "v1" / "send" / String)
        .and(warp::put())
        .and(authenticated(
            services.keys.clone(),
            services.client.clone(),
        ))
        .then(move |txn: String, request: Authenticated| {
            let services = services.clone();
            async move { reply(handle(&services, &percent_decode(&txn), request).await) }
        })
        .boxed()
}

async fn handle(services: &Services, txn_id: &str, request: Authenticated) -> Result<Response> {
    let started = std::time::Instant::now();
    let origin = &request.origin;
    // A retry of a transaction we answered gets the same answer, and
    // nothing in it is processed again.
    if let Some(stored) = services.transactions.response(origin, txn_id)? {
        let body: Value = serde_json::from_slice(&stored)
            .map_err(|e| Error::internal(format!("stored transaction answer: {e}")))?;
        return Ok(json_response(http::StatusCode::OK, &body));
    }
    let transaction: Transaction = parse_json(&request.body)?;
    if transaction.origin != origin.as_str() {
        return Err(Error::forbidden(format!(
            "the transaction's origin {} is not the server that signed it ({origin})",
            transaction.origin
        )));
    }
    if transaction.pdus.len() > MAX_PDUS || transaction.edus.len() > MAX_EDUS {
        return Err(Error::bad_json(format!(
            "a transaction holds at most {MAX_PDUS} PDUs and {MAX_EDUS} EDUs"
        )));
    }
    let n_pdus = transaction.pdus.len();
    let results = services
        .ingest
        .receive_transaction(origin, transaction.pdus)
        .await;
    services.edus.receive(origin, transaction.edus);
    let pdus: BTreeMap<OwnedEventId, Value> = results
        .into_iter()
        .map(|(id, outcome)| match outcome {
            Ok(()) => (id, json!({})),
            Err(reason) => (id, json!({ "error": reason })),
        })
        .collect();
    let body = json!({ "pdus": pdus });
    services
        .transactions
        .record(origin, txn_id, body.to_string().as_bytes())?;
    // Acknowledge only what is on disk.
    services.rooms.flush().await?;
    services.inbound.record(started.elapsed(), n_pdus);
    Ok(json_response(http::StatusCode::OK, &body))
}
