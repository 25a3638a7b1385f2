//! Media between hearth and a real Synapse: each server's users download
//! the other's uploads through their own server's authenticated
//! endpoint, which fetches them over federation (multipart/mixed).

mod common;

use bytes::Bytes;
use common::{client::Client, http, synapse::Synapse, Hearth, TestCa};

/// Bytes no compression or sniffing would change: every byte value.
fn payload() -> Vec<u8> {
    (0..70_000u32).map(|i| (i * 7 % 256) as u8).collect()
}

async fn call(
    to: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    content_type: &str,
    body: Option<Vec<u8>>,
) -> (u16, ::http::HeaderMap, Bytes) {
    let auth = format!("Bearer {token}");
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", content_type),
    ];
    http::request_full(http::Target::Plain(to), method, path, &headers, body).await
}

fn content_uri(status: u16, body: &[u8]) -> String {
    let reply: serde_json::Value = serde_json::from_slice(body).expect("json");
    assert_eq!(status, 200, "{reply}");
    let uri = reply["content_uri"].as_str().expect("content_uri");
    uri.strip_prefix("mxc://").expect("mxc").to_owned()
}

#[tokio::test]
async fn synapse_and_hearth_download_each_others_media() {
    let ca = TestCa::new();
    let hearth = Hearth::start(&ca);
    let synapse = Synapse::start(&ca);
    let alice = Client::login(&hearth, "alice").await;
    let bob = synapse.register("bob").await;
    let bytes = payload();

    // Synapse's user uploads; hearth's user downloads it through hearth.
    let (status, _, body) = call(
        synapse.client,
        "POST",
        "/_matrix/media/v3/upload?filename=from-synapse.bin",
        &bob,
        "application/octet-stream",
        Some(bytes.clone()),
    )
    .await;
    let on_synapse = content_uri(status, &body);
    let (status, headers, body) = call(
        hearth.client,
        "GET",
        &format!("/_matrix/client/v1/media/download/{on_synapse}"),
        &alice.token,
        "",
        None,
    )
    .await;
    assert_eq!(
        status,
        200,
        "{}\n{}",
        String::from_utf8_lossy(&body),
        hearth.log()
    );
    assert_eq!(body.as_ref(), bytes.as_slice(), "hearth served other bytes");
    let disposition = headers
        .get("content-disposition")
        .and_then(|v| v.to_str().ok());
    assert_eq!(
        disposition,
        Some("attachment; filename=\"from-synapse.bin\"")
    );

    // hearth's user uploads; Synapse's user downloads it through Synapse.
    let (status, _, body) = call(
        hearth.client,
        "POST",
        "/_matrix/media/v3/upload?filename=from-hearth.bin",
        &alice.token,
        "application/octet-stream",
        Some(bytes.clone()),
    )
    .await;
    let on_hearth = content_uri(status, &body);
    let (status, _, body) = call(
        synapse.client,
        "GET",
        &format!("/_matrix/client/v1/media/download/{on_hearth}"),
        &bob,
        "",
        None,
    )
    .await;
    assert_eq!(
        status,
        200,
        "{}\n{}",
        String::from_utf8_lossy(&body),
        synapse.log()
    );
    assert_eq!(
        body.as_ref(),
        bytes.as_slice(),
        "Synapse served other bytes"
    );
}
