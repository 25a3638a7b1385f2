use super::*;
use http::HeaderValue;

fn parse(value: &str) -> Result<XMatrix> {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(value).expect("header"),
    );
    parse_x_matrix(&headers)
}

/// 64 bytes in unpadded base64, with the non-token `/`.
const SIG: &str =
    "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ";

fn request(body: &str) -> SignedRequest {
    let mut headers = HeaderMap::new();
    let header = format!(r#"X-Matrix origin="a.org",key="ed25519:k",sig="{SIG}""#);
    headers.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&header).expect("header"),
    );
    let us = <&ServerName>::try_from("b.org").expect("name");
    let body = Bytes::copy_from_slice(body.as_bytes());
    SignedRequest::new(&headers, &Method::PUT, "/x?y=1", us, body).expect("request")
}

#[test]
fn a_canonical_body_is_spliced_in_as_the_signed_json() {
    let canonical = request(r#"{"a":["é",1],"b":{"c":null}}"#);
    let spliced = canonical.spliced().expect("text");
    // What ruma makes of the whole signed object.
    let whole: CanonicalJsonObject = serde_json::from_value(serde_json::json!({
        "content": {"a": ["é", 1], "b": {"c": null}},
        "destination": "b.org", "method": "PUT", "origin": "a.org", "uri": "/x?y=1",
    }))
    .expect("object");
    assert_eq!(spliced, CanonicalJsonValue::Object(whole).to_string());
    assert_eq!(canonical.canonical().expect("json"), spliced);
    let spaced = request(r#"{"b": {"c": null}, "a": ["\u00e9", 1]}"#);
    assert_ne!(spaced.spliced().expect("text"), spliced);
    assert_eq!(spaced.canonical().expect("json"), spliced);
    let empty = request("");
    assert_eq!(empty.spliced(), Some(empty.fields.clone()));
    assert_eq!(empty.canonical().expect("no content"), empty.fields);
    assert!(!empty.fields.contains("content"));
    // A body that is not text is never checked as if there were none.
    let mut binary = request("");
    binary.body = Bytes::from_static(&[0xff, 0xfe]);
    assert_eq!(binary.spliced(), None);
    assert_eq!(
        binary.canonical().expect_err("not JSON").errcode,
        "M_NOT_JSON"
    );
}

#[test]
fn quoted_params_in_any_order() {
    let x = parse(&format!(
        r#"X-Matrix sig="{SIG}",key="ed25519:a_b",destination="b.org:8448",origin="a.org""#
    ))
    .expect("parses");
    assert_eq!(x.origin.as_str(), "a.org");
    assert_eq!(
        x.destination.as_ref().map(|d| d.as_str()),
        Some("b.org:8448")
    );
    assert_eq!(x.key.as_str(), "ed25519:a_b");
}

#[test]
fn unquoted_values_with_colons_from_older_servers() {
    let x = parse(&format!(
        "X-Matrix origin=a.org:8448,key=ed25519:k1,sig={SIG}"
    ))
    .expect("parses");
    assert_eq!(x.origin.as_str(), "a.org:8448");
    assert!(x.destination.is_none());
}

#[test]
fn garbled_headers_are_bad_requests() {
    for bad in [
        "Bearer abc",
        "X-Matrix origin=\"a.org\"",
        "X-Matrix ,,,",
        "X-Matrix origin=\"a.org\",key=\"nokey\",sig=\"x\"",
    ] {
        let err = parse(bad).expect_err(bad);
        assert_eq!(err.status, http::StatusCode::BAD_REQUEST, "{bad}: {err}");
    }
    let missing = parse_x_matrix(&HeaderMap::new()).expect_err("no header");
    assert_eq!(missing.status, http::StatusCode::UNAUTHORIZED);
}
