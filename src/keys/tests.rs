use std::sync::Arc;

use super::*;

/// ruma's own request signing: the reference.
fn by_ruma(keys: &KeyService, destination: &ServerName, uri: &str, body: &[u8]) -> String {
    let request = http::Request::builder()
        .method(Method::PUT)
        .uri(uri)
        .body(body)
        .expect("request");
    let own = keys.own_keys();
    let input = ruma::api::federation::authentication::XMatrixSigningInput::new(
        keys.server_name.clone(),
        destination.to_owned(),
        own.current.as_ref(),
    );
    XMatrix::sign_http_request(&request, input)
        .expect("signed")
        .to_string()
}

#[test]
fn requests_are_signed_as_ruma_signs_them() {
    let dir = tempfile::tempdir().expect("dir");
    let config = Config {
        server_name: "a.example.org".try_into().expect("name"),
        ..Config::default()
    };
    let store = Store::open(dir.path()).expect("store");
    let client = Arc::new(HttpsClient::new(&config).expect("client"));
    let keys = KeyService::new(&config, store, client).expect("keys");
    let destination = <&ServerName>::try_from("b.example.org:8448").expect("name");
    let uri = "/_matrix/federation/v1/send/1-2";
    let body = serde_json::json!({
        "edus": [{"content": {"q": "\"é\n"}, "edu_type": "m.x"}],
        "origin": "a.example.org",
        "origin_server_ts": 5,
        "pdus": [{"a": [1, {"b": null}], "z": "ü"}],
    });
    let canonical = ruma::canonical_json::to_canonical_value(&body)
        .expect("canonical")
        .to_string();
    let expected = by_ruma(&keys, destination, uri, canonical.as_bytes());
    let spliced = keys
        .authorization_canonical(destination, &Method::PUT, uri, canonical.as_bytes())
        .expect("spliced");
    assert_eq!(spliced, expected);
    // Any JSON body is made canonical first: same signature.
    let loose = serde_json::to_vec_pretty(&body).expect("pretty");
    let signed = keys
        .authorization(destination, &Method::PUT, uri, &loose)
        .expect("signed");
    assert_eq!(signed, expected);
    // No body, no content.
    for empty in [
        keys.authorization(destination, &Method::PUT, uri, b""),
        keys.authorization_canonical(destination, &Method::PUT, uri, b""),
    ] {
        assert_eq!(
            empty.expect("signed"),
            by_ruma(&keys, destination, uri, b"")
        );
    }
    let other = keys
        .authorization_canonical(destination, &Method::PUT, "/other", canonical.as_bytes())
        .expect("spliced");
    assert_ne!(spliced, other);
}
