//! Signature checks per second: a bare ed25519 verify (the floor), an
//! `X-Matrix` request (header parse + canonical JSON + verify), a signed key
//! response, and request checks spread over every core.
//!
//! Run: `cargo bench --bench verify`. Compare the request figures with the
//! bare verify to see what the JSON handling costs.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hearth::{
    federation::auth::SignedRequest,
    keys::{own::key_pair_from_seed, remote::check_key_response, verify::verify_bytes},
};
use http::{HeaderMap, HeaderValue, Method};
use ruma::{
    api::federation::authentication::{XMatrix, XMatrixSigningInput},
    serde::{base64::Standard, Base64},
    signatures::{sign_json, Ed25519KeyPair, KeyPair},
    CanonicalJsonObject, OwnedServerName, ServerName,
};

const ORIGIN: &str = "origin.example.org";
const DESTINATION: &str = "destination.example.org";
const URI: &str = "/_matrix/federation/v1/send/1700000000000";

fn key() -> Ed25519KeyPair {
    key_pair_from_seed(&[7u8; 32], "ed25519:bench").expect("key")
}

fn public_key(pair: &Ed25519KeyPair) -> String {
    Base64::<Standard, _>::new(pair.public_key().to_vec()).encode()
}

/// A `/send` body with one small message PDU: a typical request.
fn send_body() -> Vec<u8> {
    serde_json::json!({
        "origin": ORIGIN,
        "origin_server_ts": 1_700_000_000_000u64,
        "pdus": [{
            "auth_events": ["$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "$bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"],
            "content": {"body": "Hello from the other side of the federation", "msgtype": "m.text"},
            "depth": 42,
            "hashes": {"sha256": "5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"},
            "origin_server_ts": 1_700_000_000_000u64,
            "prev_events": ["$ccccccccccccccccccccccccccccccccccccccccccc"],
            "room_id": "!room:origin.example.org",
            "sender": "@alice:origin.example.org",
            "signatures": {ORIGIN: {"ed25519:bench": "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ"}},
            "type": "m.room.message"
        }]
    })
    .to_string()
    .into_bytes()
}

fn signed_headers(pair: &Ed25519KeyPair, body: &[u8]) -> HeaderMap {
    let request = http::Request::builder()
        .method(Method::PUT)
        .uri(URI)
        .body(body)
        .expect("request");
    let input = XMatrixSigningInput::new(
        OwnedServerName::try_from(ORIGIN).expect("name"),
        OwnedServerName::try_from(DESTINATION).expect("name"),
        pair,
    );
    let header = XMatrix::sign_http_request(&request, input)
        .expect("sign")
        .to_string();
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&header).expect("header"),
    );
    headers
}

fn check_request(headers: &HeaderMap, body: &[u8], public: &str) {
    let us = <&ServerName>::try_from(DESTINATION).expect("name");
    let request =
        SignedRequest::new(headers, &Method::PUT, URI, us, body.to_vec().into()).expect("parses");
    request.verify(public).expect("verifies");
}

fn benches(c: &mut Criterion) {
    let pair = key();
    let public = public_key(&pair);
    let body = send_body();
    let headers = signed_headers(&pair, &body);
    check_request(&headers, &body, &public);

    let message = vec![b'x'; 1200];
    let signature = pair.sign(&message);
    let raw_public = pair.public_key();
    let mut group = c.benchmark_group("verify");
    group.throughput(Throughput::Elements(1));
    group.bench_function("ed25519_bare_1200_bytes", |b| {
        b.iter(|| {
            assert!(verify_bytes(
                black_box(&raw_public),
                signature.as_bytes(),
                black_box(&message)
            ))
        })
    });
    group.bench_function("x_matrix_request_send_1_pdu", |b| {
        b.iter(|| check_request(black_box(&headers), black_box(&body), &public))
    });

    let mut response: CanonicalJsonObject = serde_json::from_value(serde_json::json!({
        "server_name": ORIGIN,
        "valid_until_ts": 1_900_000_000_000u64,
        "verify_keys": {"ed25519:bench": {"key": public}},
        "old_verify_keys": {}
    }))
    .expect("object");
    sign_json(ORIGIN, &pair, &mut response).expect("sign");
    let origin = <&ServerName>::try_from(ORIGIN).expect("name");
    group.bench_function("key_response_check", |b| {
        b.iter(|| check_key_response(origin, black_box(&response)).expect("valid"))
    });

    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let per_core = 64;
    group.throughput(Throughput::Elements((cores * per_core) as u64));
    group.bench_function(format!("ed25519_bare_on_{cores}_cores"), |b| {
        b.iter(|| {
            std::thread::scope(|scope| {
                for _ in 0..cores {
                    scope.spawn(|| {
                        (0..per_core).for_each(|_| {
                            assert!(verify_bytes(&raw_public, signature.as_bytes(), &message))
                        })
                    });
                }
            })
        })
    });
    group.bench_function(format!("x_matrix_request_on_{cores}_cores"), |b| {
        b.iter(|| {
            std::thread::scope(|scope| {
                for _ in 0..cores {
                    scope.spawn(|| {
                        (0..per_core).for_each(|_| check_request(&headers, &body, &public))
                    });
                }
            })
        })
    });
    group.finish();
}

criterion_group!(verify, benches);
criterion_main!(verify);
