//! `GET /_matrix/client/versions`: the spec versions hearth serves, and the
//! unstable features clients look for that it has.
//! Spec: client-server-api "API Standards", "GET /_matrix/client/versions".

use serde_json::json;
use warp::Filter;

use crate::{client::Route, http_util::ok_json};

pub fn route() -> Route {
    warp::path!("_matrix" / "client" / "versions")
        .and(warp::get())
        .map(|| {
            // v1.11 tells clients to fetch media through the authenticated
            // endpoints (client/routes/media/).
            ok_json(&json!({
                "versions": ["r0.6.1", "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6",
                    "v1.7", "v1.8", "v1.9", "v1.10", "v1.11"],
                // As Synapse does: Element offers cross-signing only where
                // this is set, whatever the versions say.
                "unstable_features": {
                    "org.matrix.e2e_cross_signing": true,
                    // Threads, threaded receipts and recursive relations,
                    // for clients that look for them by name (all in v1.10).
                    "org.matrix.msc3440.stable": true,
                    "org.matrix.msc3771": true,
                    "org.matrix.msc3981": true,
                    // Delayed events (client/routes/delayed_events.rs).
                    "org.matrix.msc4140": true,
                    // Simplified sliding sync (client/routes/sliding_sync.rs).
                    "org.matrix.simplified_msc3575": true,
                },
            }))
        })
        .boxed()
}
