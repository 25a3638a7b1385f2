//! A user's push rules: the spec's defaults until the user changes one,
//! then the whole ruleset as `m.push_rules` global account data (where
//! clients also read it from `/sync`). ruma evaluates and edits rulesets.
//! Spec: client-server-api "Push Rules".

use ruma::{
    push::{
        AnyPushRuleRef, EventMatchConditionData, NewConditionalPushRule, NewPushRule,
        NewSimplePushRule, PushCondition, RuleKind, Ruleset,
    },
    RoomId, UserId,
};
use serde_json::Value;

use super::AccountService;
use crate::{
    error::{Error, Result},
    rooms::RoomService,
};

pub use crate::rooms::notify::PUSH_RULES;

/// The user's ruleset.
pub fn ruleset(rooms: &RoomService, user: &UserId) -> Result<Ruleset> {
    Ok(Ruleset::clone(&*rooms.push_rules(user)?))
}

/// One edit of a user's ruleset at a time, so two never drop each other's.
static CHANGING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Applies `change` to the user's ruleset and, when it says it changed
/// something, stores the ruleset at a new stream position (`/sync` shows it).
pub fn edit(
    accounts: &AccountService,
    rooms: &RoomService,
    user: &UserId,
    change: impl FnOnce(&mut Ruleset) -> Result<bool>,
) -> Result<()> {
    let _one = CHANGING.lock().unwrap_or_else(|e| e.into_inner());
    let mut rules = ruleset(rooms, user)?;
    if !change(&mut rules)? {
        return Ok(());
    }
    let content = serde_json::json!({ "global": rules });
    let saved = accounts.set_account_data(rooms, user, None, PUSH_RULES, content);
    // Evaluated from the next event on.
    rooms.push_rules_changed(user);
    saved
}

/// A room upgrade's push rules: the user's enabled rules about the old
/// room (its room rule; override and underride rules matching its
/// `room_id`, such as Element's "mute"), again for the replacement, under
/// IDs naming it, unless the user has those already. As Synapse does.
/// Spec: client-server-api "Room Upgrades" (settings transferred).
pub fn copy_room_push_rules(
    accounts: &AccountService,
    rooms: &RoomService,
    user: &UserId,
    old: &RoomId,
    new: &RoomId,
) -> Result<()> {
    edit(accounts, rooms, user, |rules| {
        let mut copies = Vec::new();
        if let Some(AnyPushRuleRef::Room(rule)) = rules.get(RuleKind::Room, old) {
            if rule.enabled {
                copies.push(NewPushRule::Room(NewSimplePushRule::new(
                    new.to_owned(),
                    rule.actions.clone(),
                )));
            }
        }
        for (kind, list) in [
            (RuleKind::Override, &rules.override_),
            (RuleKind::Underride, &rules.underride),
        ] {
            for rule in list
                .iter()
                .filter(|r| r.enabled && about(&r.conditions, old))
            {
                let conditions = rule.conditions.iter().map(|c| moved(c, old, new)).collect();
                let id = rule.rule_id.replace(old.as_str(), new.as_str());
                let copy = NewConditionalPushRule::new(id, conditions, rule.actions.clone());
                copies.push(match kind {
                    RuleKind::Override => NewPushRule::Override(copy),
                    _ => NewPushRule::Underride(copy),
                });
            }
        }
        let mut changed = false;
        for copy in copies {
            if rules.get(copy.kind(), copy.rule_id()).is_none() {
                rules
                    .insert(copy, None, None)
                    .map_err(|e| Error::internal(format!("copied push rule: {e}")))?;
                changed = true;
            }
        }
        Ok(changed)
    })
}

fn about(conditions: &[PushCondition], room: &RoomId) -> bool {
    conditions.iter().any(|c| names(c, room))
}

/// Whether `condition` matches the room ID `room`.
fn names(condition: &PushCondition, room: &RoomId) -> bool {
    matches!(condition, PushCondition::EventMatch(m) if m.key == "room_id" && m.pattern == room.as_str())
}

/// `condition`, naming `new` where it named `old`.
fn moved(condition: &PushCondition, old: &RoomId, new: &RoomId) -> PushCondition {
    if names(condition, old) {
        PushCondition::EventMatch(EventMatchConditionData::new(
            "room_id".to_owned(),
            new.to_string(),
        ))
    } else {
        condition.clone()
    }
}

/// One rule as clients see it.
pub fn rule_json(rule: AnyPushRuleRef<'_>) -> Result<Value> {
    let value = match rule {
        AnyPushRuleRef::Override(r) | AnyPushRuleRef::Underride(r) => serde_json::to_value(r),
        AnyPushRuleRef::Content(r) => serde_json::to_value(r),
        AnyPushRuleRef::Room(r) => serde_json::to_value(r),
        AnyPushRuleRef::Sender(r) => serde_json::to_value(r),
        _ => return Err(Error::not_found("no such push rule kind")),
    };
    value.map_err(|e| Error::internal(e.to_string()))
}
