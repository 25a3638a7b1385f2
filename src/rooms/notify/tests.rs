use ruma::{
    push::{PushConditionRoomCtx, Ruleset},
    serde::Raw,
    user_id, UInt,
};

use super::{defaults::default_rules, first_match};

/// What the rules say of a message `body` (with `m.mentions` when given)
/// from bob to alice (display name "Alice") in a room of three.
fn actions_for(rules: &Ruleset, body: &str, mentions: Option<serde_json::Value>) -> Vec<String> {
    let mut content = serde_json::json!({"msgtype": "m.text", "body": body});
    if let Some(mentions) = mentions {
        content["m.mentions"] = mentions;
    }
    let event = serde_json::json!({"type": "m.room.message", "sender": "@bob:h",
        "room_id": "!r:h", "content": content});
    let raw = serde_json::value::to_raw_value(&event).expect("raw");
    let flat = ruma::push::FlattenedJson::from_raw(&Raw::<()>::from_json(raw));
    let context = PushConditionRoomCtx::new(
        "!r:h".try_into().expect("room"),
        UInt::from(3u32),
        user_id!("@alice:h").to_owned(),
        "Alice".to_owned(),
    );
    first_match(rules, &flat, &context)
        .unwrap_or_default()
        .iter()
        .map(|a| serde_json::to_string(a).expect("action"))
        .collect()
}

const HIGHLIGHT: &str = r#"{"set_tweak":"highlight"}"#;

#[test]
fn a_name_in_the_body_highlights_unless_the_event_has_m_mentions() {
    let rules = default_rules(user_id!("@alice:h"));
    assert!(actions_for(&rules, "hey Alice, lunch?", None).contains(&HIGHLIGHT.to_owned()));
    assert!(actions_for(&rules, "is alice there", None).contains(&HIGHLIGHT.to_owned()));
    assert!(!actions_for(&rules, "lunch?", None).contains(&HIGHLIGHT.to_owned()));
    // With m.mentions, only the mention decides.
    let named = actions_for(&rules, "hey Alice", Some(serde_json::json!({})));
    assert_eq!(named, [r#""notify""#]);
    let mentioned = actions_for(
        &rules,
        "hi",
        Some(serde_json::json!({"user_ids": ["@alice:h"]})),
    );
    assert!(mentioned.contains(&HIGHLIGHT.to_owned()));
}

#[test]
fn legacy_rules_sit_where_synapse_puts_them() {
    let rules = default_rules(user_id!("@alice:h"));
    let ids: Vec<&str> = rules.override_.iter().map(|r| r.rule_id.as_str()).collect();
    let at = |id: &str| ids.iter().position(|i| *i == id).expect(id);
    assert_eq!(
        at(".m.rule.contains_display_name"),
        at(".m.rule.is_user_mention") + 1
    );
    assert_eq!(at(".m.rule.roomnotif"), at(".m.rule.is_room_mention") + 1);
    assert_eq!(rules.content.len(), 1);
}
