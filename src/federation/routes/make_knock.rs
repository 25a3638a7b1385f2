//! `GET /_matrix/federation/v1/make_knock/{roomId}/{userId}?ver=…`.
//! Spec: server-server-api.md "Knocking upon a room"; knocks.yaml.

use warp::{filters::BoxedFilter, reply::Response};

use super::{make_join::template_route, Services};

pub fn route(services: Services) -> BoxedFilter<(Response,)> {
    template_route(services, "make_knock", "knock", true)
}
