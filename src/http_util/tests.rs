#[test]
fn percent_decoding_leaves_malformed_escapes_alone() {
    assert_eq!(super::percent_decode("%21room%3Aa.org"), "!room:a.org");
    assert_eq!(super::percent_decode("%zz%4"), "%zz%4");
}

#[test]
fn percent_encoding_keeps_ids_intact_through_a_path() {
    let id = "$abc+/=:é?&#!@[::1]";
    let encoded = super::percent_encode(id);
    assert!(encoded
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"%-._~".contains(&b)));
    assert_eq!(super::percent_decode(&encoded), id);
    assert_eq!(super::percent_encode("!room:a.org"), "%21room%3Aa.org");
}

#[test]
fn spliced_json_is_the_json_it_stands_for() {
    let items = [b"{\"a\":1}".to_vec(), b"[true]".to_vec()];
    let array = super::splice_array(&items);
    let object = super::splice_object([
        ("list", array.as_slice()),
        ("name\"\u{1}", super::json_string("é\n").as_slice()),
    ]);
    let parsed: serde_json::Value = serde_json::from_slice(&object).expect("JSON");
    assert_eq!(
        parsed,
        serde_json::json!({"list": [{"a": 1}, [true]], "name\"\u{1}": "é\n"})
    );
    assert_eq!(super::splice_array(&[]), b"[]");
    assert_eq!(super::splice_object([]), b"{}");
}

#[test]
fn a_body_is_not_json_or_json_of_the_wrong_shape() {
    #[derive(serde::Deserialize, Debug)]
    struct Body {
        #[allow(dead_code)] // only its presence is checked
        n: u32,
    }
    let errcode = |body: &[u8]| {
        super::parse_json::<Body>(body)
            .expect_err("refused")
            .errcode
    };
    assert!(super::parse_json::<Body>(br#"{"n": 3}"#).is_ok());
    assert_eq!(errcode(br#"{"n": "3"}"#), "M_BAD_JSON");
    assert_eq!(errcode(br#"{"m": 3}"#), "M_BAD_JSON");
    assert_eq!(errcode(br#"{"n": 3"#), "M_NOT_JSON");
    assert_eq!(errcode(b"not json"), "M_NOT_JSON");
}
