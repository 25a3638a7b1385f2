//! Fetching the member events a partial-state join left out, in the
//! background: the state before our join, from each server the join
//! answer listed in turn, retried with backoff until one answers (and
//! resumed after a restart).
//! Spec: server-server-api.md "Joining Rooms", "Retrieving events".

use std::{sync::Arc, time::Duration};

use ruma::{OwnedRoomId, RoomId};

use super::CompletionLock;
use crate::rooms::RoomService;
use crate::{
    error::{Error, Result},
    peers::Peers,
};

const FIRST_RETRY: Duration = Duration::from_secs(2);
const LAST_RETRY: Duration = Duration::from_secs(600);

/// Completes `room`'s partial join in the background; the room is
/// locked for the first attempt before this returns.
pub async fn spawn(rooms: Arc<RoomService>, peers: Arc<Peers>, room: OwnedRoomId) {
    let mut held = Some(rooms.hold_for_completion(&room).await);
    tokio::spawn(async move {
        let mut delay = FIRST_RETRY;
        while let Err(error) = complete(&rooms, &peers, &room, held.take()).await {
            tracing::warn!(%room, %error, retry_in = ?delay, "cannot fetch a partial join's state");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(LAST_RETRY);
        }
    });
}

/// Resumes the partial joins a previous run left incomplete.
pub async fn resume(rooms: &Arc<RoomService>, peers: &Arc<Peers>) -> Result<()> {
    for room in rooms.partial_rooms()? {
        spawn(rooms.clone(), peers.clone(), room).await;
    }
    Ok(())
}

async fn complete(
    rooms: &RoomService,
    peers: &Peers,
    room: &RoomId,
    held: Option<CompletionLock>,
) -> Result<()> {
    rooms
        .complete_partial_state(room, held, |partial| async move {
            let mut last = Error::remote(format!("no server to fetch {room}'s state from"));
            for server in &partial.servers {
                match peers.state(server, room, &partial.join).await {
                    Ok(body) => return Ok((body.pdus, body.auth_chain)),
                    Err(e) => last = e,
                }
            }
            Err(last)
        })
        .await
}
