//! `PUT /_matrix/federation/v1/send/{txnId}`: a transaction of PDUs and EDUs.
//! Spec: server-server-api.md "Transactions"; transactions.yaml.

use warp::{filters::BoxedFilter, reply::Response, Filter};

use super::Services;
use crate::{
    federation::auth::{authenticated, Authenticated},
    http_util::{json_response, percent_decode, reply},
};

pub fn route(services: Services) -> BoxedFilter<(Response,)> {
    warp::path!("_matrix" / "federation" / "v1" / "send" / String)
        .and(warp::put())
        .and(authenticated(
            services.keys.clone(),
            services.client.clone(),
        ))
        .then(move |txn: String, request: Authenticated| {
            let receiver = services.receiver.clone();
            async move {
                let answer = receiver
                    .receive(&request.origin, &percent_decode(&txn), &request.body)
                    .await;
                reply(answer.map(|body| json_response(http::StatusCode::OK, &body)))
            }
        })
        .boxed()
}
