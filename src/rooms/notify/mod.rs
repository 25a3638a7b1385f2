//! Push rules evaluated as events are appended, ours or other servers'
//! (client-server-api "Push Notifications", "Push Rules"): for each of our
//! users joined to the room except the sender (and the invitee of an
//! invite), the first of their rules that applies decides; a `notify`
//! action becomes a notification written with the event, which unread
//! counts and `GET /notifications` read (`reads.rs`).
//!
//! ruma evaluates the rules. Its `Ruleset::get_actions` flattens the event
//! anew for every user; here it is flattened once per event and each
//! user's rules run over the same flattening, and parsed rulesets are kept
//! until the user changes them.

mod defaults;
mod reads;

pub use defaults::default_rules;
pub use reads::{Notification, PushDetails};

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use futures_util::FutureExt;
use ruma::{
    events::TimelineEventType,
    push::{Action, FlattenedJson, PushConditionPowerLevelsCtx, PushConditionRoomCtx, Ruleset},
    serde::Raw,
    CanonicalJsonObject, OwnedEventId, OwnedUserId, RoomId, UInt, UserId,
};

use super::{event::Pdu, RoomService};
use crate::{
    error::{Error, Result},
    store::rooms::{
        notifications::{Notified, UserNotified},
        relations::relation_of,
        ShortState,
    },
};

/// The account data type push rules are kept under.
pub const PUSH_RULES: &str = "m.push_rules";

/// Parsed rulesets, until their user changes them.
#[derive(Default)]
pub struct Rulesets(Mutex<HashMap<OwnedUserId, Arc<Ruleset>>>);

impl RoomService {
    /// The user's push rules: the defaults until they change one.
    pub fn push_rules(&self, user: &UserId) -> Result<Arc<Ruleset>> {
        let cached = self.rulesets.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(rules) = cached.get(user) {
            return Ok(rules.clone());
        }
        drop(cached);
        let rules = match self.accounts.account_data(user, None, PUSH_RULES)? {
            Some(data) => serde_json::from_value(data.content["global"].clone())
                .map_err(|e| Error::internal(format!("stored push rules: {e}")))?,
            None => defaults::default_rules(user),
        };
        let rules = Arc::new(rules);
        let mut cached = self.rulesets.0.lock().unwrap_or_else(|e| e.into_inner());
        cached.insert(user.to_owned(), rules.clone());
        Ok(rules)
    }

    /// Woken whenever an event notified one of our users (pushers wait on it).
    pub fn notified_ready(&self) -> Arc<tokio::sync::Notify> {
        self.notified_ready.clone()
    }

    /// Forgets the user's parsed rules after they changed them.
    pub fn push_rules_changed(&self, user: &UserId) {
        let mut cached = self.rulesets.0.lock().unwrap_or_else(|e| e.into_inner());
        cached.remove(user);
    }

    /// The notifications `pdu` makes, judged at the state `before` it.
    pub(in crate::rooms) fn notified_by(
        &self,
        room: &RoomId,
        pdu: &Pdu,
        object: &CanonicalJsonObject,
        before: &Arc<ShortState>,
    ) -> Result<Option<Notified>> {
        let audience = self.servers.audience(&self.trees, room, before)?;
        let mut targets: Vec<(OwnedUserId, Option<String>)> = audience
            .local
            .into_iter()
            .filter(|(user, _)| *user != pdu.sender)
            // A bridge's puppets get no push, as on Synapse: their
            // application service gets the event.
            .filter(|(user, _)| self.appservices.exclusive_owner_of_user(user).is_none())
            .collect();
        if let Some(invitee) = invitee(pdu, self.server_name()) {
            targets.push((invitee, None));
        }
        if targets.is_empty() {
            return Ok(None);
        }
        let raw =
            serde_json::value::to_raw_value(object).map_err(|e| Error::internal(e.to_string()))?;
        let event = FlattenedJson::from_raw(&Raw::<()>::from_json(raw));
        let power = self
            .power_levels(room)
            .ok()
            .map(PushConditionPowerLevelsCtx::from);
        let thread = thread_of(object);
        let members = UInt::try_from(audience.joined).unwrap_or(UInt::MAX);
        let mut users = Vec::new();
        for (user, name) in targets {
            let mut context = PushConditionRoomCtx::new(
                room.to_owned(),
                members,
                user.clone(),
                name.unwrap_or_default(),
            );
            if let Some(power) = &power {
                context = context.with_power_levels(power.clone());
            }
            let rules = self.push_rules(&user)?;
            let Some(actions) = first_match(&rules, &event, &context) else {
                continue;
            };
            if !actions.iter().any(Action::should_notify) {
                continue;
            }
            users.push(UserNotified {
                user,
                highlight: actions.iter().any(Action::is_highlight),
                actions: serde_json::to_vec(actions).map_err(|e| Error::internal(e.to_string()))?,
            });
        }
        Ok((!users.is_empty()).then(|| Notified {
            room: room.to_owned(),
            stream: 0,
            ts: crate::time::now_ms(),
            thread,
            users,
        }))
    }
}

/// The actions of the first rule of `rules` that applies. The rules'
/// conditions only wait on thread subscriptions, which we do not serve,
/// so each evaluation is ready at once.
fn first_match<'a>(
    rules: &'a Ruleset,
    event: &FlattenedJson,
    context: &PushConditionRoomCtx,
) -> Option<&'a [Action]> {
    rules
        .iter()
        .find(|rule| rule.applies(event, context).now_or_never() == Some(true))
        .map(|rule| rule.actions())
}

#[cfg(test)]
mod tests;

/// Our user an invite is for, who is not a member yet.
fn invitee(pdu: &Pdu, ours: &ruma::ServerName) -> Option<OwnedUserId> {
    if pdu.kind != TimelineEventType::RoomMember || pdu.membership() != Some("invite") {
        return None;
    }
    let user = OwnedUserId::try_from(pdu.state_key.as_deref()?).ok()?;
    (user.server_name() == ours).then_some(user)
}

/// The thread an event is in: its root, for a reply in a thread.
fn thread_of(object: &CanonicalJsonObject) -> Option<OwnedEventId> {
    let (parent, relation) = relation_of(object)?;
    (relation.rel_type == crate::store::rooms::relations::THREAD).then_some(parent)
}
