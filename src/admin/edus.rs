//! Admin reads of what other servers' EDUs left, before the client API's
//! `/sync` shows them: `GET rooms/{roomId}/ephemeral` (typing, receipts)
//! and `GET users/{userId}/ephemeral` (presence, to-device inbox, device
//! updates).

use std::sync::Arc;

use ruma::{OwnedRoomId, OwnedUserId};
use warp::{filters::BoxedFilter, reply::Response, Filter};

use crate::{
    edus::EduService,
    error::Error,
    http_util::{ok_json, percent_decode, reply},
};

pub fn routes(edus: Arc<EduService>) -> BoxedFilter<(Response,)> {
    let service = edus.clone();
    let room = warp::path!("rooms" / String / "ephemeral")
        .and(warp::get())
        .map(move |room: String| {
            let room = percent_decode(&room);
            reply(
                OwnedRoomId::try_from(room.as_str())
                    .map_err(|e| Error::invalid_param(format!("{room:?} is not a room ID: {e}")))
                    .and_then(|room| service.room_view(&room))
                    .map(|view| ok_json(&view)),
            )
        });
    let user = warp::path!("users" / String / "ephemeral")
        .and(warp::get())
        .map(move |user: String| {
            let user = percent_decode(&user);
            reply(
                OwnedUserId::try_from(user.as_str())
                    .map_err(|e| Error::invalid_param(format!("{user:?} is not a user ID: {e}")))
                    .and_then(|user| edus.user_view(&user))
                    .map(|view| ok_json(&view)),
            )
        });
    room.or(user).unify().boxed()
}
