//! Our user joining a room this server is not in: the `make_join` /
//! `send_join` handshake through the first resident that lets us in, then
//! the room imported from the answer, its member events fetched in the
//! background when the answer left them out.
//! Spec: server-server-api.md "Joining Rooms".

use ruma::{CanonicalJsonObject, OwnedEventId, OwnedServerName, RoomId, UserId};

use crate::{
    error::Result,
    peers::{SendJoinAnswer, JOIN},
    rooms::{
        membership::{Content, MembershipService},
        partial::fetch,
    },
};

impl MembershipService {
    /// Joins `user` (ours) to `room` through the first of `servers` that
    /// lets us in; the last server's refusal is the error otherwise.
    pub async fn join(
        &self,
        room: &RoomId,
        user: &UserId,
        servers: &[OwnedServerName],
        extra: &Content,
    ) -> Result<OwnedEventId> {
        if self.resident(room) {
            return self.own_membership(room, user, "join", extra).await;
        }
        let servers = self.candidates(room, user, servers)?;
        let id = self
            .through(room, user, &servers, |server| async move {
                let (mut join, version, answer) = self
                    .handshake::<SendJoinAnswer<CanonicalJsonObject>>(
                        &JOIN, room, user, &server, extra,
                    )
                    .await?;
                if let Some(signed) = answer.event {
                    join = self.rooms.check_cosigned(&join, signed, &version).await?;
                }
                let partial = answer
                    .members_omitted
                    .then(|| self.servers_to_complete(&server, &answer.servers_in_room));
                let given = (answer.state, answer.auth_chain);
                self.rooms
                    .import_join(room, &version, join, given, partial)
                    .await
            })
            .await?;
        if self.rooms.partial_join(room)?.is_some() {
            fetch::spawn(self.rooms.clone(), self.peers.clone(), room.to_owned()).await;
        }
        self.rooms.settle_pending(user, room).await?;
        Ok(id)
    }

    /// Where to fetch a partial join's member events: the server that
    /// answered first, then the others it listed (never ourselves).
    pub(in crate::rooms) fn servers_to_complete(
        &self,
        answered: &OwnedServerName,
        listed: &[String],
    ) -> Vec<OwnedServerName> {
        let own = self.peers.server_name();
        let mut servers = vec![answered.clone()];
        for server in listed
            .iter()
            .filter_map(|s| OwnedServerName::try_from(s.as_str()).ok())
        {
            if server != own && !servers.contains(&server) {
                servers.push(server);
            }
        }
        servers
    }
}
