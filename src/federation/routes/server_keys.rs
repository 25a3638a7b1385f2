use std::sync::Arc;

use warp::{filters::BoxedFilter, reply::Response, Filter};

use crate::{
    http_util::{ok_json, reply},
    keys::KeyService,
};

/// `GET /_matrix/key/v2/server`, and the deprecated `…/server/{keyId}`
/// form older servers still request (the answer is the same).
/// Spec: server-server-api.md "Publishing Keys".
pub fn route(keys: Arc<KeyService>) -> BoxedFilter<(Response,)> {
    let bare = warp::path!("_matrix" / "key" / "v2" / "server");
    let with_key_id = warp::path!("_matrix" / "key" / "v2" / "server" / String)
        .map(|_| ())
        .untuple_one();
    bare.or(with_key_id)
        .unify()
        .and(warp::get())
        .map(move || reply(keys.server_key_response().map(|body| ok_json(&body))))
        .boxed()
}
