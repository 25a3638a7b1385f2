use super::*;
use serde_json::json;

#[test]
fn a_spliced_transaction_is_its_canonical_json() {
    let pdus = [
        json!({"type": "m.room.message", "content": {"body": "é\"\n"}, "depth": 3}),
        json!({"a": [1, null, {"z": 1, "b": true}]}),
    ];
    let stored: Vec<Vec<u8>> = pdus
        .iter()
        .map(|p| {
            ruma::canonical_json::to_canonical_value(p)
                .expect("canonical")
                .to_string()
                .into_bytes()
        })
        .collect();
    let edus = vec![
        json!({"edu_type": "m.typing", "content": {"user_id": "@u:a", "typing": true}}),
        json!({"edu_type": "m.direct_to_device", "content": {"x": 1.5}}),
    ];
    let origin = <&ServerName>::try_from("a.example.org").expect("name");
    let body = transaction_body(origin, 42, &stored, edus.clone());
    let expected = json!({
        "origin": "a.example.org", "origin_server_ts": 42, "pdus": pdus,
        // The float cannot be canonical JSON: that EDU is left out.
        "edus": [edus[0]],
    });
    let expected = ruma::canonical_json::to_canonical_value(&expected)
        .expect("canonical")
        .to_string();
    assert_eq!(String::from_utf8(body).expect("utf-8"), expected);
    let empty = transaction_body(origin, 1, &[], vec![]);
    assert_eq!(
        String::from_utf8(empty).expect("utf-8"),
        r#"{"edus":[],"origin":"a.example.org","origin_server_ts":1,"pdus":[]}"#
    );
}
