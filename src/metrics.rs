//! `GET /metrics` on the client listener, when `metrics.enabled`: the
//! outbound federation numbers of `hearth federation status`, the
//! inbound transaction latencies, and each application service's queue
//! (`hearth appservice status`), for Prometheus.

use std::sync::Arc;

use warp::{filters::BoxedFilter, reply::Response, Filter};

use crate::{
    delivery::{sender::Sender, status},
    http_util::reply,
    inbound::stats::InboundStats,
    listener::Connections,
    time::now_ms,
};

/// Unmatched (so answered like any unknown path) unless `enabled`.
pub fn route(
    sender: Arc<Sender>,
    inbound: Arc<InboundStats>,
    connections: Arc<Connections>,
    free_space: crate::store::FreeSpace,
    appservices: Arc<crate::appservices::AppserviceService>,
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
                text.push_str(&connections_text(&connections));
                text.push_str(&refusals_text());
                text.push_str(&disk_text(&free_space));
                text.push_str(&media_text());
                text.push_str(&appservices.to_prometheus());
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

fn media_text() -> String {
    format!(
        "# HELP hearth_media_remote_fetches_total Other servers' media fetched (each item once, however many ask at once).\n\
         # TYPE hearth_media_remote_fetches_total counter\n\
         hearth_media_remote_fetches_total {}\n",
        crate::media::remote_fetches()
    )
}

/// Open connections, and those closed unread for each cap.
fn connections_text(connections: &Connections) -> String {
    let (per_address, total) = connections.refused();
    format!(
        "# HELP hearth_connections_open Inbound connections open on both listeners.\n\
         # TYPE hearth_connections_open gauge\n\
         hearth_connections_open {}\n\
         # HELP hearth_connections_refused_total Inbound connections closed unread, by cap.\n\
         # TYPE hearth_connections_refused_total counter\n\
         hearth_connections_refused_total{{reason=\"per_address\"}} {per_address}\n\
         hearth_connections_refused_total{{reason=\"total\"}} {total}\n",
        connections.open_now()
    )
}

fn disk_text(free_space: &crate::store::FreeSpace) -> String {
    free_space.bytes().map_or_else(String::new, |free| {
        format!(
            "# HELP hearth_disk_free_bytes Free space on the data directory's disk.\n\
             # TYPE hearth_disk_free_bytes gauge\n\
             hearth_disk_free_bytes {free}\n"
        )
    })
}

/// Requests refused by a limit, per limit.
fn refusals_text() -> String {
    let mut text = String::from(
        "# HELP hearth_requests_refused_total Requests refused by a limit (429, 408), by limit.\n\
         # TYPE hearth_requests_refused_total counter\n",
    );
    for (reason, count) in crate::rate_limit::refusals() {
        text.push_str(&format!(
            "hearth_requests_refused_total{{reason=\"{reason}\"}} {count}\n"
        ));
    }
    text
}
