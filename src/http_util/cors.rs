//! CORS on the client listener, so browser clients (Element Web) can talk
//! to hearth without a proxy adding headers: every response carries the
//! spec's headers, and a preflight `OPTIONS` on any path is answered at
//! once, running none of the endpoint's logic.
//! Spec: client-server-api "Web Browser Clients".

use http::{header, HeaderValue, Method, StatusCode};
use warp::{filters::BoxedFilter, reply::Response, Filter, Reply};

const ALLOW_ORIGIN: &str = "*";
const ALLOW_METHODS: &str = "GET, POST, PUT, DELETE, OPTIONS";
const ALLOW_HEADERS: &str = "X-Requested-With, Content-Type, Authorization";

/// `OPTIONS` on any path: 204 with nothing but the CORS headers (added by
/// [`allow`], like every response's). Other methods pass through as "not
/// found" (warp's `options()` would say "method not allowed", and that
/// would win over every route's 404).
pub fn preflight() -> BoxedFilter<(Response,)> {
    warp::method()
        .and_then(|method: Method| async move {
            if method == Method::OPTIONS {
                Ok(())
            } else {
                Err(warp::reject::not_found())
            }
        })
        .untuple_one()
        .map(|| {
            let mut response = Response::default();
            *response.status_mut() = StatusCode::NO_CONTENT;
            response
        })
        .boxed()
}

/// Adds the CORS headers to a response.
pub fn allow(reply: impl Reply) -> Response {
    let mut response = reply.into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::ACCESS_CONTROL_ALLOW_ORIGIN, ALLOW_ORIGIN),
        (header::ACCESS_CONTROL_ALLOW_METHODS, ALLOW_METHODS),
        (header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOW_HEADERS),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
