//! Which application services an event goes to, decided as each accepted
//! event is appended, at the state before it; the event is queued for
//! them in its own transaction (`store/outbound.rs`), and `appservices/`
//! sends the queues. The rules are Synapse's: the room, the sender, the
//! member event's subject, the room's canonical aliases, or one of our
//! joined users, claimed by the registration's namespaces.
//! Spec: application-service-api.md "Pushing events".

use std::sync::Arc;

use ruma::{
    events::{StateEventType, TimelineEventType},
    RoomAliasId, RoomId, UserId,
};

use super::{event::Pdu, RoomService};
use crate::{config::appservices::Appservice, error::Result, store::rooms::ShortState};

impl RoomService {
    /// The IDs of the application services interested in `pdu`.
    pub(in crate::rooms) fn interested_appservices(
        &self,
        room: &RoomId,
        pdu: &Pdu,
        before: &Arc<ShortState>,
    ) -> Result<Vec<Arc<str>>> {
        let mut found = Vec::new();
        let mut aliases = None;
        for appservice in self.appservices.all() {
            if appservice.url.is_none() {
                continue;
            }
            let interested = claims_event(appservice, room, pdu)
                || self.servers.any_local(&self.trees, room, before, |user| {
                    appservice.claims_user(user)
                })?
                || (!appservice.aliases.is_empty() && {
                    let aliases = match &mut aliases {
                        Some(aliases) => aliases,
                        None => aliases.insert(self.canonical_aliases(before)?),
                    };
                    aliases
                        .iter()
                        .any(|a: &ruma::OwnedRoomAliasId| appservice.claims_alias(a))
                });
            if interested {
                found.push(appservice.id.clone());
            }
        }
        Ok(found)
    }

    /// The IDs of the application services that take ephemeral events
    /// and are interested in `room` as it is now (its ID, an alias, or
    /// one of our joined users claimed).
    pub fn appservices_for_ephemeral(&self, room: &RoomId) -> Result<Vec<Arc<str>>> {
        let wanted = self
            .appservices
            .all()
            .iter()
            .any(|a| a.receive_ephemeral && a.url.is_some());
        if !wanted {
            return Ok(Vec::new());
        }
        let state = self.shared_current_state(room)?;
        let mut found = Vec::new();
        for appservice in self.appservices.all() {
            if !appservice.receive_ephemeral || appservice.url.is_none() {
                continue;
            }
            let interested = appservice.claims_room(room)
                || self.servers.any_local(&self.trees, room, &state, |user| {
                    appservice.claims_user(user)
                })?;
            if interested {
                found.push(appservice.id.clone());
            }
        }
        Ok(found)
    }

    /// The IDs of the application services `wanted` selects that an
    /// update of `user`'s own (presence, devices) concerns: those that
    /// claim the user, or one of our users joined to a room with them.
    pub fn appservices_for_user(
        &self,
        user: &UserId,
        wanted: impl Fn(&Appservice) -> bool,
    ) -> Result<Vec<Arc<str>>> {
        let (mut found, mut rest): (Vec<_>, Vec<_>) = self
            .appservices
            .all()
            .iter()
            .filter(|a| a.url.is_some() && wanted(a))
            .partition(|a| a.claims_user(user));
        if rest.is_empty() {
            return Ok(found.into_iter().map(|a| a.id.clone()).collect());
        }
        for room in self.rooms_joined_by(user)? {
            let state = self.shared_current_state(&room)?;
            let mut left = Vec::with_capacity(rest.len());
            for appservice in rest {
                let claimed = |member: &UserId| appservice.claims_user(member);
                if self
                    .servers
                    .any_local(&self.trees, &room, &state, claimed)?
                {
                    found.push(appservice);
                } else {
                    left.push(appservice);
                }
            }
            rest = left;
            if rest.is_empty() {
                break;
            }
        }
        Ok(found.into_iter().map(|a| a.id.clone()).collect())
    }

    /// The application services holding `user`'s devices (MSC3202) that
    /// take their to-device messages (MSC4203, with ephemeral events),
    /// and whether one claims the user exclusively: then nothing else
    /// could read the messages, and they are not kept for `/sync`.
    pub fn appservices_taking_to_device(&self, user: &UserId) -> (Vec<Arc<str>>, bool) {
        self.appservices_claiming_devices(user, |a| a.receive_ephemeral)
    }

    /// The application services holding `user`'s devices (MSC3202), and
    /// whether one claims the user exclusively.
    pub fn appservices_holding_devices_of(&self, user: &UserId) -> (Vec<Arc<str>>, bool) {
        self.appservices_claiming_devices(user, |_| true)
    }

    fn appservices_claiming_devices(
        &self,
        user: &UserId,
        wanted: impl Fn(&Appservice) -> bool,
    ) -> (Vec<Arc<str>>, bool) {
        let mut exclusive = false;
        let found = self
            .appservices
            .all()
            .iter()
            .filter(|a| a.holds_devices() && wanted(a) && a.claims_user(user))
            .inspect(|a| exclusive |= a.claims_user_exclusively(user))
            .map(|a| a.id.clone())
            .collect();
        (found, exclusive)
    }

    fn shared_current_state(&self, room: &RoomId) -> Result<Arc<ShortState>> {
        let record = self.record(room)?;
        let shorts = super::shorts::Shorts::cached(&self.trees, &self.groups);
        shorts.shared(record.current_state)
    }

    /// The canonical alias and alternative aliases in `state`.
    fn canonical_aliases(&self, state: &ShortState) -> Result<Vec<ruma::OwnedRoomAliasId>> {
        let shorts = super::shorts::Shorts::cached(&self.trees, &self.groups);
        let Some(id) = shorts.lookup(state, &StateEventType::RoomCanonicalAlias, "")? else {
            return Ok(Vec::new());
        };
        let Some(event) = self.trees.event_json(id.as_str())? else {
            return Ok(Vec::new());
        };
        let content = serde_json::to_value(event.get("content"))
            .map_err(|e| crate::error::Error::internal(e.to_string()))?;
        let alt = content["alt_aliases"].as_array().into_iter().flatten();
        Ok(std::iter::once(&content["alias"])
            .chain(alt)
            .filter_map(|a| a.as_str())
            .filter_map(|a| <&RoomAliasId>::try_from(a).ok())
            .map(ToOwned::to_owned)
            .collect())
    }
}

/// Whether the event's room, sender or member subject is claimed.
fn claims_event(appservice: &Appservice, room: &RoomId, pdu: &Pdu) -> bool {
    let subject = match (&pdu.kind, &pdu.state_key) {
        (TimelineEventType::RoomMember, Some(key)) => <&UserId>::try_from(key.as_str()).ok(),
        _ => None,
    };
    appservice.claims_room(room)
        || appservice.claims_user(&pdu.sender)
        || subject.is_some_and(|user| appservice.claims_user(user))
}
