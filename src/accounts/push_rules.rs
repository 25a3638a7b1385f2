//! A user's push rules: the spec's defaults until the user changes one,
//! then the whole ruleset as `m.push_rules` global account data (where
//! clients also read it from `/sync`). ruma evaluates and edits rulesets.
//! Spec: client-server-api "Push Rules".

use ruma::{
    push::{AnyPushRuleRef, Ruleset},
    UserId,
};
use serde_json::Value;

use super::AccountService;
use crate::{
    error::{Error, Result},
    rooms::RoomService,
};

pub const PUSH_RULES: &str = "m.push_rules";

/// The user's ruleset.
pub fn ruleset(accounts: &AccountService, user: &UserId) -> Result<Ruleset> {
    match accounts.trees.account_data(user, None, PUSH_RULES)? {
        Some(data) => serde_json::from_value(data.content["global"].clone())
            .map_err(|e| Error::internal(format!("stored push rules: {e}"))),
        None => Ok(Ruleset::server_default(user)),
    }
}

/// Stores a changed ruleset at a new stream position, so `/sync` shows it.
pub fn save(
    accounts: &AccountService,
    rooms: &RoomService,
    user: &UserId,
    ruleset: &Ruleset,
) -> Result<()> {
    let content = serde_json::json!({ "global": ruleset });
    accounts.set_account_data(rooms, user, None, PUSH_RULES, content)
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
