use warp::{filters::BoxedFilter, reply::Response, Filter};

use crate::http_util::ok_json;

/// `GET /_matrix/federation/v1/version`
/// Spec: server-server-api.md "Server implementation".
pub fn route() -> BoxedFilter<(Response,)> {
    warp::path!("_matrix" / "federation" / "v1" / "version")
        .and(warp::get())
        .map(|| {
            ok_json(&serde_json::json!({
                "server": { "name": "hearth", "version": env!("CARGO_PKG_VERSION") }
            }))
        })
        .boxed()
}
