//! `GET /metrics` on the client listener, when `metrics.enabled`: the
//! outbound federation numbers of `hearth federation status` and the
//! inbound transaction latencies, for Prometheus.

use std::sync::Arc;

use warp::{filters::BoxedFilter, reply::Response, Filter};

use crate::{
    delivery::{sender::Sender, status},
    http_util::reply,
    inbound::stats::InboundStats,
    time::now_ms,
};

/// Unmatched (so answered like any unknown path) unless `enabled`.
pub fn route(
    sender: Arc<Sender>,
    inbound: Arc<InboundStats>,
    enabled: bool,
) -> BoxedFilter<(Response,)> {
    warp::path!("metrics")
        .and(warp::get())
        .and(warp::any().and_then(move || async move {
            if enabled {
                Ok(())
            } else {
                Err(warp::reject::not_found())
            }
        }))
        .untuple_one()
        .map(move || {
            reply(sender.status().map(|statuses| {
                let mut text = status::to_prometheus(&statuses, now_ms());
                text.push_str(&inbound.to_prometheus());
                let mut response = Response::new(text.into());
                response.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("text/plain; version=0.0.4"),
                );
                response
            }))
        })
        .boxed()
}
