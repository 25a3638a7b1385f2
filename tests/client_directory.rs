//! The room directory across servers: a room published on hearth A with
//! an alias is listed in A's public rooms as read by a user of hearth B
//! (through B, over federation), found by its alias from B, and joined.

mod common;

use common::{client::Client, rooms::encode, Hearth, TestCa};
use serde_json::json;

#[tokio::test]
async fn a_published_room_is_listed_resolved_and_joined_from_another_server() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let b = Hearth::start(&ca);
    let alice = Client::login(&a, "alice").await;
    let bob = Client::login(&b, "bob").await;
    let room = alice
        .ok("POST", "createRoom", json!({"visibility": "public", "name": "Lobby", "topic": "say hi", "room_alias_name": "lobby"}))
        .await["room_id"]
        .as_str()
        .expect("room")
        .to_owned();
    let hidden = alice
        .ok("POST", "createRoom", json!({"name": "Back office"}))
        .await;
    assert!(hidden["room_id"].is_string());
    let alias = format!("#lobby:{}", a.server_name);

    // B's user reads A's directory through B.
    let listed = bob
        .ok(
            "POST",
            &format!("publicRooms?server={}", encode(&a.server_name)),
            json!({"filter": {"generic_search_term": "lob"}}),
        )
        .await;
    let chunk = listed["chunk"].as_array().expect("chunk");
    assert_eq!(chunk.len(), 1, "{listed}");
    assert_eq!(chunk[0]["room_id"], room);
    assert_eq!(chunk[0]["name"], "Lobby");
    assert_eq!(chunk[0]["canonical_alias"], alias);
    assert_eq!(chunk[0]["num_joined_members"], 1);
    assert_eq!(chunk[0]["join_rule"], "public");
    let unfiltered = bob
        .ok(
            "GET",
            &format!("publicRooms?server={}", encode(&a.server_name)),
            json!(null),
        )
        .await;
    assert_eq!(
        unfiltered["total_room_count_estimate"], 1,
        "the unpublished room is listed: {unfiltered}"
    );

    // The alias resolves over federation, and joining by it works.
    let resolved = bob
        .ok(
            "GET",
            &format!("directory/room/{}", encode(&alias)),
            json!(null),
        )
        .await;
    assert_eq!(resolved["room_id"], room, "{resolved}");
    assert_eq!(resolved["servers"][0], a.server_name.as_str());
    let joined = bob
        .ok("POST", &format!("join/{}", encode(&alias)), json!({}))
        .await;
    assert_eq!(joined["room_id"], room);
    let members = alice
        .ok(
            "GET",
            &format!("rooms/{}/joined_members", encode(&room)),
            json!(null),
        )
        .await;
    assert!(members["joined"].get(&bob.user).is_some(), "{members}");

    // Only the alias's creator may remove it; then it no longer resolves.
    let (status, reply) = bob
        .call(
            "DELETE",
            &format!("directory/room/{}", encode(&alias)),
            json!({}),
        )
        .await;
    assert_eq!(status, 404, "B does not hold A's aliases: {reply}");
    alice
        .ok(
            "DELETE",
            &format!("directory/room/{}", encode(&alias)),
            json!({}),
        )
        .await;
    let (status, reply) = bob
        .call(
            "GET",
            &format!("directory/room/{}", encode(&alias)),
            json!(null),
        )
        .await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (404, Some("M_NOT_FOUND")),
        "{reply}"
    );
}
