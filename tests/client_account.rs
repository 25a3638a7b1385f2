//! Account and personal endpoints on one real hearth: changing the
//! password ends other sessions, deactivation leaves rooms and locks the
//! account, push rules change and reach `/sync`, presence, the user
//! directory, knocking on a local room, and the sending device seeing its
//! transaction ID.

mod common;

use common::{
    client::{Client, PASSWORD},
    rooms::encode,
    Hearth, TestCa,
};
use serde_json::{json, Value};

fn batch(reply: &Value) -> String {
    reply["next_batch"].as_str().expect("next_batch").to_owned()
}

#[tokio::test]
async fn password_change_and_deactivation() {
    let ca = TestCa::new();
    let h = Hearth::start(&ca);
    let alice = Client::login(&h, "alice").await;
    let other_device = Client::login_again(&h, "alice").await;
    let bob = Client::login(&h, "bob").await;

    // Without the password: the user-interactive auth flow, nothing changed.
    let (status, reply) = alice
        .call(
            "POST",
            "account/password",
            json!({"new_password": "new secret 1"}),
        )
        .await;
    assert_eq!(status, 401, "{reply}");
    assert_eq!(
        reply["flows"][0]["stages"][0], "m.login.password",
        "{reply}"
    );
    let (status, _) = alice
        .call(
            "POST",
            "account/password",
            json!({"new_password": "new secret 1", "auth": {"type": "m.login.password", "password": "wrong"}}),
        )
        .await;
    assert_eq!(status, 401);
    alice
        .ok(
            "POST",
            "account/password",
            json!({"new_password": "new secret 1", "auth": {"type": "m.login.password", "user": alice.user, "password": PASSWORD}}),
        )
        .await;
    // This session lives on; the other one ended; only the new password works.
    alice.ok("GET", "account/whoami", json!(null)).await;
    let (status, reply) = other_device
        .call("GET", "account/whoami", json!(null))
        .await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (401, Some("M_UNKNOWN_TOKEN"))
    );
    let login = |password: &str| json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"}, "password": password});
    let anonymous = Client {
        token: String::new(),
        ..Client::login_again(&h, "bob").await
    };
    assert_eq!(
        anonymous.call("POST", "login", login(PASSWORD)).await.0,
        403
    );
    assert_eq!(
        anonymous
            .call("POST", "login", login("new secret 1"))
            .await
            .0,
        200
    );
    assert_eq!(
        alice.ok("GET", "account/3pid", json!(null)).await["threepids"],
        json!([])
    );

    // An OpenID token names alice to whoever checks it with the server.
    let openid = alice
        .ok(
            "POST",
            &format!("user/{}/openid/request_token", encode(&alice.user)),
            json!({}),
        )
        .await;
    assert_eq!(openid["token_type"], "Bearer", "{openid}");
    assert_eq!(openid["matrix_server_name"], h.server_name.as_str());
    let userinfo =
        |token: &str| format!("/_matrix/federation/v1/openid/userinfo?access_token={token}");
    let token = openid["access_token"].as_str().expect("token");
    let (status, who) = h
        .federation_request(&ca, "GET", &userinfo(token), &[], None)
        .await;
    assert_eq!(
        (status, who["sub"].as_str()),
        (200, Some(alice.user.as_str())),
        "{who}"
    );
    let (status, who) = h
        .federation_request(&ca, "GET", &userinfo("forged"), &[], None)
        .await;
    assert_eq!(
        (status, who["errcode"].as_str()),
        (401, Some("M_UNKNOWN_TOKEN"))
    );
    let (status, _) = bob
        .call(
            "POST",
            &format!("user/{}/openid/request_token", encode(&alice.user)),
            json!({}),
        )
        .await;
    assert_eq!(status, 403);

    // Bob is in alice's room, then deactivates: he leaves, and is locked out.
    let room = alice.create_room(json!({"preset": "public_chat"})).await;
    bob.ok("POST", &format!("join/{}", encode(&room)), json!({}))
        .await;
    let (status, _) = bob
        .call(
            "POST",
            "account/deactivate",
            json!({"auth": {"type": "m.login.password", "password": "wrong"}}),
        )
        .await;
    assert_eq!(status, 401);
    bob.ok(
        "POST",
        "account/deactivate",
        json!({"auth": {"type": "m.login.password", "password": PASSWORD}}),
    )
    .await;
    let member = alice
        .ok(
            "GET",
            &format!(
                "rooms/{}/state/m.room.member/{}",
                encode(&room),
                encode(&bob.user)
            ),
            json!(null),
        )
        .await;
    assert_eq!(member["membership"], "leave", "{member}");
    assert_eq!(bob.call("GET", "account/whoami", json!(null)).await.0, 401);
    let bob_login = json!({"type": "m.login.password", "user": "bob", "password": PASSWORD});
    assert_eq!(anonymous.call("POST", "login", bob_login).await.0, 403);
}

#[tokio::test]
async fn push_rules_presence_directory_knock_and_transaction_ids() {
    let ca = TestCa::new();
    let h = Hearth::start(&ca);
    let alice = Client::login(&h, "alice").await;
    let alice_phone = Client::login_again(&h, "alice").await;
    let bob = Client::login(&h, "bob").await;
    let carol = Client::login(&h, "carol").await;

    // The default rules are in the first sync, where clients read them.
    let first = alice.ok("GET", "sync", json!(null)).await;
    let rules = first["account_data"]["events"]
        .as_array()
        .and_then(|events| events.iter().find(|e| e["type"] == "m.push_rules"))
        .unwrap_or_else(|| panic!("no push rules in {first}"));
    assert!(rules["content"]["global"]["override"]
        .as_array()
        .is_some_and(|r| !r.is_empty()));
    let since = batch(&first);

    let rule = "pushrules/global/override/quiet";
    alice
        .ok("PUT", rule, json!({"actions": [], "conditions": [{"kind": "event_match", "key": "content.body", "pattern": "hush"}]}))
        .await;
    let got = alice.ok("GET", rule, json!(null)).await;
    assert_eq!(got["rule_id"], "quiet", "{got}");
    assert_eq!(got["conditions"][0]["pattern"], "hush", "{got}");
    alice
        .ok("PUT", &format!("{rule}/enabled"), json!({"enabled": false}))
        .await;
    assert_eq!(
        alice
            .ok("GET", &format!("{rule}/enabled"), json!(null))
            .await["enabled"],
        false
    );
    alice
        .ok(
            "PUT",
            &format!("{rule}/actions"),
            json!({"actions": ["notify"]}),
        )
        .await;
    assert_eq!(
        alice
            .ok("GET", &format!("{rule}/actions"), json!(null))
            .await["actions"],
        json!(["notify"])
    );
    // The change reaches the client's sync.
    alice
        .sync_until(&since, "push rules", |reply| {
            reply["account_data"]["events"]
                .as_array()
                .is_some_and(|events| {
                    events.iter().any(|e| {
                        e["type"] == "m.push_rules"
                            && e["content"]["global"]["override"]
                                .as_array()
                                .is_some_and(|rules| rules.iter().any(|r| r["rule_id"] == "quiet"))
                    })
                })
        })
        .await;
    let (status, reply) = alice
        .call(
            "DELETE",
            "pushrules/global/override/.m.rule.master",
            json!(null),
        )
        .await;
    assert_eq!(status, 400, "{reply}");
    alice.ok("DELETE", rule, json!(null)).await;
    let (status, reply) = alice.call("GET", rule, json!(null)).await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (404, Some("M_NOT_FOUND"))
    );
    let (status, reply) = alice
        .call(
            "PUT",
            "pushrules/global/override/.mine",
            json!({"actions": []}),
        )
        .await;
    assert_eq!(status, 400, "{reply}");

    // A room shared by alice and bob; carol shares none with them.
    alice
        .ok(
            "PUT",
            &format!("profile/{}/displayname", encode(&alice.user)),
            json!({"displayname": "Alice Liddell"}),
        )
        .await;
    let room = alice.create_room(json!({"invite": [bob.user]})).await;
    bob.ok("POST", &format!("join/{}", encode(&room)), json!({}))
        .await;
    let found = bob
        .ok(
            "POST",
            "user_directory/search",
            json!({"search_term": "liddell"}),
        )
        .await;
    assert_eq!(found["results"][0]["user_id"], alice.user, "{found}");
    assert_eq!(
        found["results"][0]["display_name"], "Alice Liddell",
        "{found}"
    );
    let hidden = carol
        .ok(
            "POST",
            "user_directory/search",
            json!({"search_term": "liddell"}),
        )
        .await;
    assert_eq!(hidden["results"], json!([]), "{hidden}");
    let (status, _) = carol
        .call("POST", "user_directory/search", json!({"limit": 3}))
        .await;
    assert_eq!(status, 400);

    // Presence: set by alice, read and synced by bob.
    let bob_since = batch(
        &bob.ok("GET", "sync?set_presence=offline", json!(null))
            .await,
    );
    alice
        .ok(
            "PUT",
            &format!("presence/{}/status", encode(&alice.user)),
            json!({"presence": "unavailable", "status_msg": "at lunch"}),
        )
        .await;
    let presence = bob
        .ok(
            "GET",
            &format!("presence/{}/status", encode(&alice.user)),
            json!(null),
        )
        .await;
    assert_eq!(presence["presence"], "unavailable", "{presence}");
    assert_eq!(presence["status_msg"], "at lunch", "{presence}");
    bob.sync_until(&bob_since, "alice's presence", |reply| {
        reply["presence"]["events"]
            .as_array()
            .is_some_and(|events| {
                events
                    .iter()
                    .any(|e| e["sender"] == alice.user && e["content"]["status_msg"] == "at lunch")
            })
    })
    .await;
    let (status, _) = bob
        .call(
            "PUT",
            &format!("presence/{}/status", encode(&alice.user)),
            json!({"presence": "online"}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = alice
        .call(
            "PUT",
            &format!("presence/{}/status", encode(&alice.user)),
            json!({"presence": "asleep"}),
        )
        .await;
    assert_eq!(status, 400);

    // Knocking on a local room that asks for it.
    let knock_room = alice.create_room(json!({"initial_state": [{"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}}]}),
    )
    .await;
    let (status, _) = carol
        .call("POST", &format!("knock/{}", encode(&room)), json!({}))
        .await;
    assert_eq!(status, 403, "knocking on an invite-only room");
    carol
        .ok(
            "POST",
            &format!("knock/{}", encode(&knock_room)),
            json!({"reason": "let me in"}),
        )
        .await;
    let member = alice
        .ok(
            "GET",
            &format!(
                "rooms/{}/state/m.room.member/{}",
                encode(&knock_room),
                encode(&carol.user)
            ),
            json!(null),
        )
        .await;
    assert_eq!(member["membership"], "knock", "{member}");
    assert_eq!(member["reason"], "let me in", "{member}");

    // The sending device sees its transaction ID; alice's other device does not.
    let phone_since = batch(&alice_phone.ok("GET", "sync", json!(null)).await);
    let laptop_since = batch(&alice.ok("GET", "sync", json!(null)).await);
    let sent = alice
        .ok(
            "PUT",
            &format!("rooms/{}/send/m.room.message/txn-42", encode(&room)),
            json!({"msgtype": "m.text", "body": "hi"}),
        )
        .await;
    let event_id = sent["event_id"].clone();
    let find = |reply: &Value| -> Option<Value> {
        reply["rooms"]["join"][&room]["timeline"]["events"]
            .as_array()?
            .iter()
            .find(|e| e["event_id"] == event_id)
            .cloned()
    };
    let on_laptop = alice
        .sync_until(&laptop_since, "the message", |r| find(r).is_some())
        .await;
    assert_eq!(
        find(&on_laptop).expect("event")["unsigned"]["transaction_id"],
        "txn-42"
    );
    let on_phone = alice_phone
        .sync_until(&phone_since, "the message", |r| find(r).is_some())
        .await;
    assert!(find(&on_phone).expect("event")["unsigned"]["transaction_id"].is_null());
    let page = alice
        .ok(
            "GET",
            &format!("rooms/{}/messages?dir=b&limit=1", encode(&room)),
            json!(null),
        )
        .await;
    assert_eq!(
        page["chunk"][0]["unsigned"]["transaction_id"], "txn-42",
        "{page}"
    );
}

#[tokio::test]
async fn history_visibility_hides_what_came_before_joining() {
    let ca = TestCa::new();
    let h = Hearth::start(&ca);
    let alice = Client::login(&h, "alice").await;
    let bob = Client::login(&h, "bob").await;

    let say = |room: String, body: &'static str| {
        let alice = &alice;
        async move {
            alice
                .ok(
                    "PUT",
                    &format!(
                        "rooms/{}/send/m.room.message/{}",
                        encode(&room),
                        encode(body)
                    ),
                    json!({"msgtype": "m.text", "body": body}),
                )
                .await["event_id"]
                .as_str()
                .expect("event_id")
                .to_owned()
        }
    };
    let visibility = |v: &str| json!({"preset": "public_chat", "initial_state": [{"type": "m.room.history_visibility", "state_key": "", "content": {"history_visibility": v}}]});
    let joined_only = alice.create_room(visibility("joined")).await;
    let shared = alice.create_room(visibility("shared")).await;
    let secret = say(joined_only.clone(), "before bob").await;
    let open = say(shared.clone(), "before bob, shared").await;
    for room in [&joined_only, &shared] {
        bob.ok("POST", &format!("join/{}", encode(room)), json!({}))
            .await;
    }
    say(joined_only.clone(), "after bob").await;

    let bodies = |page: &Value| -> Vec<String> {
        page["chunk"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["content"]["body"].as_str().map(str::to_owned))
            .collect()
    };
    let page = bob
        .ok(
            "GET",
            &format!("rooms/{}/messages?dir=b&limit=50", encode(&joined_only)),
            json!(null),
        )
        .await;
    assert_eq!(bodies(&page), vec!["after bob"], "{page}");
    assert!(
        page["chunk"]
            .as_array()
            .expect("chunk")
            .iter()
            .any(|e| e["state_key"] == bob.user),
        "bob sees his own join"
    );
    let (status, _) = bob
        .call(
            "GET",
            &format!("rooms/{}/event/{}", encode(&joined_only), encode(&secret)),
            json!(null),
        )
        .await;
    assert_eq!(status, 404);
    // Alice, joined throughout, sees both.
    let page = alice
        .ok(
            "GET",
            &format!("rooms/{}/messages?dir=b&limit=50", encode(&joined_only)),
            json!(null),
        )
        .await;
    assert_eq!(bodies(&page), vec!["after bob", "before bob"]);

    // Shared history is there for new members.
    let page = bob
        .ok(
            "GET",
            &format!("rooms/{}/messages?dir=b&limit=50", encode(&shared)),
            json!(null),
        )
        .await;
    assert_eq!(bodies(&page), vec!["before bob, shared"], "{page}");
    bob.ok(
        "GET",
        &format!("rooms/{}/event/{}", encode(&shared), encode(&open)),
        json!(null),
    )
    .await;
}
