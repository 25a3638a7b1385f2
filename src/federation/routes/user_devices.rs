//! `GET /_matrix/federation/v1/user/devices/{userId}`: one of our users'
//! devices and keys. Spec: server-server-api.md "Device Management";
//! user_devices.yaml.

use warp::{filters::BoxedFilter, reply::Response, Filter};

use super::{admitted, Services};
use crate::{
    error::{Error, Result},
    federation::auth::Authenticated,
    http_util::{ok_json, reply},
};

pub fn route(services: Services) -> BoxedFilter<(Response,)> {
    warp::path!("_matrix" / "federation" / "v1" / "user" / "devices" / String)
        .and(warp::get())
        .and(admitted(&services))
        .map(move |user: String, _: Authenticated| reply(handle(&services, &user)))
        .boxed()
}

fn handle(services: &Services, user: &str) -> Result<Response> {
    let user = crate::request::user_id(user)?;
    if user.server_name() != services.rooms.server_name() {
        return Err(Error::not_found(format!(
            "{user} is not a user of this server"
        )));
    }
    Ok(ok_json(&services.e2ee.devices_of(&user)?))
}
