//! `GET /_matrix/federation/v1/make_leave/{roomId}/{userId}`.
//! Spec: server-server-api.md "Leaving Rooms (Rejecting Invites)"; leaving-v2.yaml.

use warp::{filters::BoxedFilter, reply::Response};

use super::{make_join::template_route, Services};

pub fn route(services: Services) -> BoxedFilter<(Response,)> {
    template_route(services, "make_leave", "leave", false)
}
