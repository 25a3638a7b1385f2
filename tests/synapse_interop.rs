//! hearth and a real Synapse on loopback: each fetches the other's keys over
//! TLS and accepts the other's signed requests; hearth vouches for
//! Synapse's keys as a notary.

mod common;

use common::{assert_signed_by, client::Client, synapse::Synapse, Hearth, TestCa};
use serde_json::json;

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn synapse_and_hearth_authenticate_each_other() {
    let ca = TestCa::new();
    let hearth = Hearth::start(&ca);
    let synapse = Synapse::start(&ca);
    let token = synapse.register("alice").await;
    let alice = synapse.user_id("alice");
    let (status, reply) = synapse
        .client_api(
            "PUT",
            &format!(
                "/_matrix/client/v3/profile/{}/displayname",
                percent_encode(&alice)
            ),
            Some(&token),
            Some(json!({"displayname": "Alice of Synapse"})),
        )
        .await;
    assert_eq!(status, 200, "{reply}");

    // hearth -> Synapse: Synapse fetches hearth's key and accepts the signature.
    let uri = format!(
        "/_matrix/federation/v1/query/profile?user_id={}",
        percent_encode(&alice)
    );
    let (status, reply) = hearth
        .admin(
            "federation/request",
            json!({"destination": synapse.server_name, "method": "GET", "uri": uri}),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply["status"],
        200,
        "Synapse refused hearth's request: {reply}\n{}",
        synapse.log()
    );
    assert_eq!(reply["body"]["displayname"], "Alice of Synapse");

    // Synapse -> hearth: a profile lookup of a hearth user makes Synapse send a
    // signed query; hearth authenticates it (fetching Synapse's key) and
    // answers with the user's display name, which Synapse relays. Had
    // authentication failed, hearth's 401 would reach the client as a 502.
    let bob = Client::login(&hearth, "bob").await;
    bob.ok(
        "PUT",
        &format!("profile/{}/displayname", percent_encode(&bob.user)),
        json!({"displayname": "Bob of hearth"}),
    )
    .await;
    let (status, reply) = synapse
        .client_api(
            "GET",
            &format!("/_matrix/client/v3/profile/{}", percent_encode(&bob.user)),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{reply}\n{}", hearth.log());
    assert_eq!(reply["displayname"], "Bob of hearth", "{reply}");

    // hearth as a notary for Synapse's keys: signed by both.
    let (status, reply) = hearth
        .federation_request(
            &ca,
            "GET",
            &format!("/_matrix/key/v2/query/{}", synapse.server_name),
            &[],
            None,
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    let (_, direct) = common::http::request(
        common::http::Target::Tls(synapse.federation, ca.ca_pem()),
        "GET",
        "/_matrix/key/v2/server",
        &[],
        None,
    )
    .await;
    let relayed = &reply["server_keys"][0];
    assert_eq!(relayed["verify_keys"], direct["verify_keys"]);
    assert_signed_by(relayed, &synapse.server_name, &direct["verify_keys"]);
    let hearth_keys = hearth.server_keys(&ca).await;
    assert_signed_by(relayed, &hearth.server_name, &hearth_keys["verify_keys"]);
}
