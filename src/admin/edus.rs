//! Admin reads of what other servers' EDUs left, raw, as the store holds
//! them (tests read these): `GET rooms/{roomId}/ephemeral` (typing, receipts)
//! and `GET users/{userId}/ephemeral` (presence, to-device inbox, device
//! updates).

use std::sync::Arc;

use warp::{filters::BoxedFilter, reply::Response, Filter};

use crate::{
    edus::EduService,
    http_util::{ok_json, reply},
};

pub fn routes(edus: Arc<EduService>) -> BoxedFilter<(Response,)> {
    let service = edus.clone();
    let room = warp::path!("rooms" / String / "ephemeral")
        .and(warp::get())
        .map(move |room: String| {
            reply(
                crate::request::room_id(&room)
                    .and_then(|room| service.room_view(&room))
                    .map(|view| ok_json(&view)),
            )
        });
    let user = warp::path!("users" / String / "ephemeral")
        .and(warp::get())
        .map(move |user: String| {
            reply(
                crate::request::user_id(&user)
                    .and_then(|user| edus.user_view(&user))
                    .map(|view| ok_json(&view)),
            )
        });
    room.or(user).unify().boxed()
}
