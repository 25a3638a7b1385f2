use super::*;
use crate::keys::own::key_pair_from_seed;
use ruma::signatures::sign_json;

/// Spec: appendices.md "Cryptographic Test Vectors", "Signing Key".
pub const SEED: &str = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1";

fn spec_key() -> ruma::signatures::Ed25519KeyPair {
    key_pair_from_seed(&decode(SEED).expect("seed"), "ed25519:1").expect("key")
}

fn public() -> String {
    Base64::<Standard, _>::new(spec_key().public_key().to_vec()).encode()
}

fn signed(json: &str) -> CanonicalJsonObject {
    let mut object: CanonicalJsonObject = serde_json::from_str(json).expect("json");
    sign_json("domain", &spec_key(), &mut object).expect("signs");
    object
}

fn signature_of(object: &CanonicalJsonObject) -> String {
    match &object["signatures"] {
        CanonicalJsonValue::Object(s) => match &s["domain"] {
            CanonicalJsonValue::Object(k) => k["ed25519:1"].as_str().unwrap_or("").to_owned(),
            _ => String::new(),
        },
        _ => String::new(),
    }
}

#[test]
fn spec_vector_empty_object() {
    let object = signed("{}");
    assert_eq!(
        signature_of(&object),
        "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ"
    );
    SignedJson::new(&object)
        .expect("canonical")
        .verify("domain", "ed25519:1", &public())
        .expect("verifies");
}

#[test]
fn spec_vector_object_with_data() {
    let object = signed(r#"{"one": 1, "two": "Two"}"#);
    assert_eq!(
        signature_of(&object),
        "KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"
    );
}

#[test]
fn tampering_breaks_the_signature() {
    let mut object = signed(r#"{"one": 1, "two": "Two"}"#);
    object.insert("two".into(), "Three".into());
    let check = SignedJson::new(&object).expect("canonical");
    assert!(check.verify("domain", "ed25519:1", &public()).is_err());
    assert!(check
        .verify("domain", "ed25519:2", &public())
        .unwrap_err()
        .contains("no signature"));
    assert!(check.verify("other", "ed25519:1", &public()).is_err());
}

#[test]
fn unsigned_and_signatures_are_not_signed() {
    let mut object = signed(r#"{"one": 1}"#);
    object.insert(
        "unsigned".into(),
        CanonicalJsonValue::Object([("age".into(), "x".into())].into()),
    );
    let check = SignedJson::new(&object).expect("canonical");
    check
        .verify("domain", "ed25519:1", &public())
        .expect("unsigned is ignored");
    assert_eq!(check.signers("domain"), vec!["ed25519:1".to_owned()]);
}

#[test]
fn garbage_signatures_and_keys_are_errors_not_panics() {
    let mut object = signed("{}");
    object.insert(
        "signatures".into(),
        serde_json::from_str(r#"{"domain": {"ed25519:1": "!!!", "ed25519:2": 5}}"#).expect("json"),
    );
    let check = SignedJson::new(&object).expect("canonical");
    assert!(check.verify("domain", "ed25519:1", &public()).is_err());
    assert!(check.verify("domain", "ed25519:2", &public()).is_err());
    assert!(check.verify("domain", "ed25519:1", "short").is_err());
}
