//! EDUs made stale by later ones in the same transaction are dropped
//! before sending: read receipts keep the latest per room, receipt type
//! and user (merged into one `m.receipt`), typing the latest per room and
//! user, presence the latest per user (merged into one `m.presence`).
//! Other EDUs (to-device messages, device list updates) keep their order.
//! A batch reads past the ones that will merge (see [`replaced_by`]), so
//! a backlog of them goes in one transaction.
//! Spec: server-server-api.md "Receipts", "Typing Notifications", "Presence".

use std::collections::HashMap;

use serde_json::{json, Map, Value};

/// The EDUs of one transaction, in queue order, coalesced.
pub fn coalesce(edus: Vec<Value>) -> Vec<Value> {
    let mut receipts: Map<String, Value> = Map::new();
    let mut presence: Map<String, Value> = Map::new();
    let mut typing_at: HashMap<(String, String), usize> = HashMap::new();
    let mut kept: Vec<Option<Value>> = Vec::with_capacity(edus.len());
    for edu in edus {
        match edu["edu_type"].as_str() {
            Some("m.receipt") if edu["content"].is_object() => merge_receipts(&mut receipts, &edu),
            Some("m.presence") if edu["content"]["push"].is_array() => {
                for update in edu["content"]["push"].as_array().into_iter().flatten() {
                    if let Some(user) = update["user_id"].as_str() {
                        presence.insert(user.to_owned(), update.clone());
                    }
                }
            }
            Some("m.typing") => {
                let key = (
                    edu["content"]["room_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    edu["content"]["user_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                );
                if let Some(earlier) = typing_at.insert(key, kept.len()) {
                    kept[earlier] = None;
                }
                kept.push(Some(edu));
            }
            _ => kept.push(Some(edu)),
        }
    }
    let mut out: Vec<Value> = kept.into_iter().flatten().collect();
    if !receipts.is_empty() {
        out.push(json!({"edu_type": "m.receipt", "content": receipts}));
    }
    if !presence.is_empty() {
        let push: Vec<Value> = presence.into_values().collect();
        out.push(json!({"edu_type": "m.presence", "content": {"push": push}}));
    }
    out
}

/// The key under which a later EDU replaces this one whole: a receipt of
/// one user in one room, typing of one user in one room, presence of one
/// user. `None` for what must be sent as it is (or holds several).
pub fn replaced_by(edu: &Value) -> Option<String> {
    let content = &edu["content"];
    let only = |value: &Value| -> Option<String> {
        let map = value.as_object()?;
        (map.len() == 1).then(|| map.keys().next().cloned())?
    };
    match edu["edu_type"].as_str()? {
        "m.receipt" => {
            let room = only(content)?;
            let kind = only(&content[&room])?;
            let user = only(&content[&room][&kind])?;
            Some(format!("m.receipt\0{room}\0{kind}\0{user}"))
        }
        "m.typing" => Some(format!(
            "m.typing\0{}\0{}",
            content["room_id"].as_str()?,
            content["user_id"].as_str()?
        )),
        "m.presence" => match content["push"].as_array()?.as_slice() {
            [one] => Some(format!("m.presence\0{}", one["user_id"].as_str()?)),
            _ => None,
        },
        _ => None,
    }
}

/// `room → type → user → receipt`, later receipts replacing earlier ones.
fn merge_receipts(receipts: &mut Map<String, Value>, edu: &Value) {
    for (room, by_type) in edu["content"].as_object().into_iter().flatten() {
        for (kind, by_user) in by_type.as_object().into_iter().flatten() {
            for (user, receipt) in by_user.as_object().into_iter().flatten() {
                let room_entry = receipts.entry(room.clone()).or_insert_with(|| json!({}));
                let kind_entry = room_entry
                    .as_object_mut()
                    .map(|r| r.entry(kind.clone()).or_insert_with(|| json!({})));
                if let Some(users) = kind_entry.and_then(Value::as_object_mut) {
                    users.insert(user.clone(), receipt.clone());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
