//! `GET /_matrix/client/versions`. Spec: client-server-api "API Standards".

use serde_json::json;
use warp::Filter;

use crate::{client::Route, http_util::ok_json};

pub fn route() -> Route {
    warp::path!("_matrix" / "client" / "versions")
        .and(warp::get())
        .map(|| {
            ok_json(&json!({
                "versions": ["r0.6.1", "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6",
                    "v1.7", "v1.8", "v1.9", "v1.10", "v1.11", "v1.12"],
                "unstable_features": {},
            }))
        })
        .boxed()
}
