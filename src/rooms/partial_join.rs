//! Fetching the member events a partial-state join left out, in the
//! background: the state before our join, from each server the join
//! answer listed in turn, retried with backoff until one answers (and
//! resumed after a restart).
//! Spec: server-server-api.md "Joining Rooms", "Retrieving events".

use std::{sync::Arc, time::Duration};

use http::Method;
use ruma::{CanonicalJsonObject, OwnedRoomId, RoomId};
use serde::Deserialize;

use super::service::{CompletionLock, RoomService};
use crate::{
    error::{Error, Result},
    federation::requester::Requester,
    http_util::percent_encode,
};

const FIRST_RETRY: Duration = Duration::from_secs(2);
const LAST_RETRY: Duration = Duration::from_secs(600);

#[derive(Deserialize)]
struct StateBody {
    pdus: Vec<CanonicalJsonObject>,
    auth_chain: Vec<CanonicalJsonObject>,
}

/// Completes `room`'s partial join in the background; the room is
/// locked for the first attempt before this returns.
pub async fn spawn(rooms: Arc<RoomService>, requester: Arc<Requester>, room: OwnedRoomId) {
    let mut held = Some(rooms.hold_for_completion(&room).await);
    tokio::spawn(async move {
        let mut delay = FIRST_RETRY;
        while let Err(error) = complete(&rooms, &requester, &room, held.take()).await {
            tracing::warn!(%room, %error, retry_in = ?delay, "cannot fetch a partial join's state");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(LAST_RETRY);
        }
    });
}

/// Resumes the partial joins a previous run left incomplete.
pub async fn resume(rooms: &Arc<RoomService>, requester: &Arc<Requester>) -> Result<()> {
    for room in rooms.partial_rooms()? {
        spawn(rooms.clone(), requester.clone(), room).await;
    }
    Ok(())
}

async fn complete(
    rooms: &RoomService,
    requester: &Requester,
    room: &RoomId,
    held: Option<CompletionLock>,
) -> Result<()> {
    rooms
        .complete_partial_state(room, held, |partial| async move {
            let uri = format!(
                "/_matrix/federation/v1/state/{}?event_id={}",
                percent_encode(room.as_str()),
                percent_encode(partial.join.as_str())
            );
            let mut last = Error::remote(format!("no server to fetch {room}'s state from"));
            for server in &partial.servers {
                match requester
                    .call::<StateBody>(server, Method::GET, &uri, None)
                    .await
                {
                    Ok(body) => return Ok((body.pdus, body.auth_chain)),
                    Err(e) => last = e,
                }
            }
            Err(last)
        })
        .await
}
