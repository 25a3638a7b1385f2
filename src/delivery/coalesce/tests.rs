use super::*;

fn receipt(room: &str, user: &str, event: &str) -> Value {
    json!({"edu_type": "m.receipt", "content": {room: {"m.read": {user: {"data": {"ts": 1}, "event_ids": [event]}}}}})
}

fn typing(room: &str, user: &str, on: bool) -> Value {
    json!({"edu_type": "m.typing", "content": {"room_id": room, "user_id": user, "typing": on}})
}

#[test]
fn later_receipts_typing_and_presence_replace_earlier_ones() {
    let to_device = json!({"edu_type": "m.direct_to_device", "content": {"message_id": "1"}});
    let edus = vec![
        receipt("!a:x", "@u:x", "$1"),
        typing("!a:x", "@u:x", true),
        to_device.clone(),
        receipt("!a:x", "@v:x", "$1"),
        receipt("!a:x", "@u:x", "$2"),
        receipt("!b:x", "@u:x", "$9"),
        json!({"edu_type": "m.presence", "content": {"push": [{"user_id": "@u:x", "presence": "online"}]}}),
        typing("!a:x", "@u:x", false),
        json!({"edu_type": "m.presence", "content": {"push": [{"user_id": "@u:x", "presence": "offline"}]}}),
    ];
    let out = coalesce(edus);
    assert_eq!(out.len(), 4, "{out:?}");
    assert_eq!(out[0], to_device);
    assert_eq!(out[1], typing("!a:x", "@u:x", false));
    let receipts = &out[2]["content"];
    assert_eq!(
        receipts["!a:x"]["m.read"]["@u:x"]["event_ids"],
        json!(["$2"])
    );
    assert_eq!(
        receipts["!a:x"]["m.read"]["@v:x"]["event_ids"],
        json!(["$1"])
    );
    assert_eq!(
        receipts["!b:x"]["m.read"]["@u:x"]["event_ids"],
        json!(["$9"])
    );
    assert_eq!(
        out[3]["content"]["push"],
        json!([{"user_id": "@u:x", "presence": "offline"}])
    );
}

#[test]
fn only_edus_about_one_user_are_replaceable() {
    let a = replaced_by(&receipt("!a:x", "@u:x", "$1"));
    assert!(a.is_some());
    assert_eq!(a, replaced_by(&receipt("!a:x", "@u:x", "$2")));
    assert_ne!(a, replaced_by(&receipt("!a:x", "@v:x", "$1")));
    assert_ne!(a, replaced_by(&receipt("!b:x", "@u:x", "$1")));
    assert_eq!(
        replaced_by(&typing("!a:x", "@u:x", true)),
        replaced_by(&typing("!a:x", "@u:x", false))
    );
    assert_ne!(
        replaced_by(&typing("!a:x", "@u:x", true)),
        replaced_by(&typing("!a:x", "@v:x", true))
    );
    let two_users = json!({"edu_type": "m.receipt", "content": {"!a:x": {"m.read": {
        "@u:x": {"event_ids": ["$1"]}, "@v:x": {"event_ids": ["$1"]}}}}});
    assert_eq!(replaced_by(&two_users), None);
    let presence = |users: &[&str]| {
        let push: Vec<Value> = users
            .iter()
            .map(|u| json!({"user_id": u, "presence": "online"}))
            .collect();
        json!({"edu_type": "m.presence", "content": {"push": push}})
    };
    assert!(replaced_by(&presence(&["@u:x"])).is_some());
    assert_eq!(replaced_by(&presence(&["@u:x", "@v:x"])), None);
    let to_device = json!({"edu_type": "m.direct_to_device", "content": {"message_id": "m"}});
    assert_eq!(replaced_by(&to_device), None);
}

#[test]
fn nothing_to_coalesce_leaves_edus_as_they_are() {
    let edus = vec![typing("!a:x", "@u:x", true), typing("!a:x", "@v:x", true)];
    assert_eq!(coalesce(edus.clone()), edus);
}
