//! The push rules a user starts with: the spec's (ruma's
//! `Ruleset::server_default`), plus the three legacy mention rules that
//! Synapse still serves by default (`.m.rule.contains_display_name`,
//! `.m.rule.roomnotif`, `.m.rule.contains_user_name`), which the spec
//! dropped in v1.17 (MSC4210). Clients and bridges that send no
//! `m.mentions` still highlight a user named in a message, as on Synapse;
//! ruma skips these rules for events that carry `m.mentions`.

use ruma::{
    power_levels::NotificationPowerLevelsKey,
    push::{
        Action, ConditionalPushRule, ConditionalPushRuleInit, EventMatchConditionData,
        HighlightTweakValue, PatternedPushRuleInit, PushCondition, Ruleset,
        SenderNotificationPermissionConditionData, SoundTweakValue, Tweak,
    },
    UserId,
};

/// The rules of a user who changed none.
pub fn default_rules(user: &UserId) -> Ruleset {
    let mut rules = Ruleset::server_default(user);
    // Synapse's order: each after its `m.mentions` successor.
    for rule in std::mem::take(&mut rules.override_) {
        let after = match rule.rule_id.as_str() {
            ".m.rule.is_user_mention" => Some(contains_display_name()),
            ".m.rule.is_room_mention" => Some(room_notif()),
            _ => None,
        };
        rules.override_.insert(rule);
        rules.override_.extend(after);
    }
    rules.content.insert(
        PatternedPushRuleInit {
            actions: ring_and_highlight(),
            default: true,
            enabled: true,
            rule_id: ".m.rule.contains_user_name".to_owned(),
            pattern: user.localpart().to_owned(),
        }
        .into(),
    );
    rules
}

fn ring_and_highlight() -> Vec<Action> {
    vec![
        Action::Notify,
        Action::SetTweak(Tweak::Sound(SoundTweakValue::Default)),
        Action::SetTweak(Tweak::Highlight(HighlightTweakValue::Yes)),
    ]
}

#[allow(deprecated)] // the condition is the rule, as Synapse serves it
fn contains_display_name() -> ConditionalPushRule {
    ConditionalPushRuleInit {
        actions: ring_and_highlight(),
        default: true,
        enabled: true,
        rule_id: ".m.rule.contains_display_name".to_owned(),
        conditions: vec![PushCondition::ContainsDisplayName],
    }
    .into()
}

fn room_notif() -> ConditionalPushRule {
    ConditionalPushRuleInit {
        actions: vec![
            Action::Notify,
            Action::SetTweak(Tweak::Highlight(HighlightTweakValue::Yes)),
        ],
        default: true,
        enabled: true,
        rule_id: ".m.rule.roomnotif".to_owned(),
        conditions: vec![
            PushCondition::EventMatch(EventMatchConditionData::new(
                "content.body".to_owned(),
                "@room".to_owned(),
            )),
            PushCondition::SenderNotificationPermission(
                SenderNotificationPermissionConditionData::new(NotificationPowerLevelsKey::Room),
            ),
        ],
    }
    .into()
}
