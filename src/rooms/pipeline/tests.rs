use super::*;
use ruma::{events::StateEventType, CanonicalJsonObject, CanonicalJsonValue, Int};
use serde_json::{json, Value};

fn ids<'a>(ids: impl Iterator<Item = &'a OwnedEventId>) -> CanonicalJsonValue {
    CanonicalJsonValue::Array(ids.map(|id| id.as_str().into()).collect())
}

struct Fixture {
    _dir: tempfile::TempDir,
    rooms: RoomService,
    room: OwnedRoomId,
}

fn user(name: &str) -> ruma::OwnedUserId {
    ruma::OwnedUserId::try_from(format!("@{name}:hearth.test")).expect("user")
}

/// A public room on server `hearth.test`, created by Alice, Bob joined.
async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("dir");
    let config = crate::config::Config {
        server_name: "hearth.test".try_into().expect("name"),
        ..Default::default()
    };
    let store = crate::store::Store::open(dir.path()).expect("store");
    let client = Arc::new(crate::net::https::HttpsClient::new(&config).expect("client"));
    let keys = Arc::new(KeyService::new(&config, store.clone(), client).expect("keys"));
    let rooms = RoomService::new(
        config.server_name.clone(),
        RoomVersionId::V12,
        &store,
        keys,
        Arc::new(tokio::sync::Notify::new()),
    );
    let room = rooms.create_room(&user("alice"), None).await.expect("room");
    rooms
        .send(
            &room,
            &user("alice"),
            "m.room.join_rules",
            Some(""),
            json!({"join_rule": "public"}),
        )
        .await
        .expect("public");
    rooms
        .send(
            &room,
            &user("bob"),
            "m.room.member",
            Some(user("bob").as_str()),
            json!({"membership": "join"}),
        )
        .await
        .expect("join");
    Fixture {
        _dir: dir,
        rooms,
        room,
    }
}

impl Fixture {
    /// A signed event with the given prev and auth events, as another
    /// server would send it.
    fn event(
        &self,
        sender: &str,
        kind: &str,
        state_key: Option<&str>,
        content: Value,
        prev: &[&OwnedEventId],
        auth: &[&OwnedEventId],
    ) -> CanonicalJsonObject {
        let rules = RoomVersionId::V12.rules().expect("rules");
        let mut object = self
            .rooms
            .base_event(&rules, &user(sender), kind, state_key, content, 100)
            .expect("event");
        object.insert("room_id".into(), self.room.as_str().into());
        object.insert("prev_events".into(), ids(prev.iter().copied()));
        object.insert("auth_events".into(), ids(auth.iter().copied()));
        self.rooms
            .keys
            .hash_and_sign_event(&mut object, &rules.redaction)
            .expect("sign");
        object
    }

    fn state(&self, kind: &str, key: &str) -> Option<OwnedEventId> {
        self.rooms
            .view(&self.room)
            .expect("view")
            .state
            .get(&(StateEventType::from(kind), key.to_owned()))
            .cloned()
    }

    fn tip(&self) -> OwnedEventId {
        self.rooms.view(&self.room).expect("view").extremities[0].clone()
    }
}

#[tokio::test]
async fn an_event_its_auth_events_forbid_is_stored_as_rejected() {
    let f = fixture().await;
    let before = f.rooms.view(&f.room).expect("view");
    let pl = f.state("m.room.power_levels", "").expect("pl");
    let bob = f.state("m.room.member", user("bob").as_str()).expect("bob");
    // Bob (level 0) tries to change the power levels (100 needed).
    let content = json!({"users": {user("bob").as_str(): 100}});
    let event = f.event(
        "bob",
        "m.room.power_levels",
        Some(""),
        content,
        &[&f.tip()],
        &[&pl, &bob],
    );
    let (id, status) = f.rooms.receive(&f.room, event).await.expect("processed");
    assert!(
        matches!(&status, Status::Rejected(r) if r.contains("auth events")),
        "{status:?}"
    );
    assert_eq!(
        f.rooms
            .trees
            .event_meta(id.as_str())
            .expect("meta")
            .expect("stored")
            .status,
        status
    );
    let after = f.rooms.view(&f.room).expect("view");
    assert_eq!(
        (after.state, after.timeline, after.extremities),
        (before.state, before.timeline, before.extremities)
    );
    // Nor is it in the auth index (no accepted event can cite it),
    // where bob's accepted join is.
    let citing = |child: &str| {
        let found = f.rooms.trees.find_citing(pl.as_str(), |c| c == child);
        found.expect("index")
    };
    assert!(!citing(id.as_str()));
    assert!(citing(bob.as_str()));
    // Nor has it a state to give out (federation /state and /state_ids).
    let meta = f
        .rooms
        .trees
        .event_meta(id.as_str())
        .expect("meta")
        .expect("stored");
    let error = f.rooms.state_ids_before(&meta).expect_err("no state");
    assert_eq!(error.status, http::StatusCode::NOT_FOUND, "{error:?}");
    // A second delivery is answered from the store.
    let again = f.event(
        "bob",
        "m.room.power_levels",
        Some(""),
        json!({}),
        &[&f.tip()],
        &[&pl, &bob, &bob],
    );
    let (_, status) = f.rooms.receive(&f.room, again).await.expect("processed");
    assert!(
        matches!(status, Status::Rejected(_)),
        "duplicated auth events: {status:?}"
    );
}

#[tokio::test]
async fn an_old_fork_the_current_state_forbids_is_soft_failed() {
    let f = fixture().await;
    let bob_joined = f.tip();
    let pl = f.state("m.room.power_levels", "").expect("pl");
    let bob = f.state("m.room.member", user("bob").as_str()).expect("bob");
    f.rooms
        .send(
            &f.room,
            &user("alice"),
            "m.room.member",
            Some(user("bob").as_str()),
            json!({"membership": "ban"}),
        )
        .await
        .expect("ban");
    let before = f.rooms.view(&f.room).expect("view");
    // Bob speaks from before his ban: valid then, not now.
    let event = f.event(
        "bob",
        "m.room.message",
        None,
        json!({"body": "still here"}),
        &[&bob_joined],
        &[&pl, &bob],
    );
    let (_, status) = f.rooms.receive(&f.room, event).await.expect("processed");
    assert!(
        matches!(&status, Status::SoftFailed(r) if r.contains("current state")),
        "{status:?}"
    );
    let after = f.rooms.view(&f.room).expect("view");
    assert_eq!(
        (after.timeline, after.extremities),
        (before.timeline, before.extremities),
        "soft-failed events stay hidden"
    );
}

#[tokio::test]
async fn a_concurrent_state_event_is_resolved_into_the_current_state() {
    let f = fixture().await;
    let fork_point = f.tip();
    let pl = f.state("m.room.power_levels", "").expect("pl");
    let alice = f
        .state("m.room.member", user("alice").as_str())
        .expect("alice");
    let topic = f
        .rooms
        .send(
            &f.room,
            &user("alice"),
            "m.room.topic",
            Some(""),
            json!({"topic": "t"}),
        )
        .await
        .expect("topic");
    let name = f.event(
        "alice",
        "m.room.name",
        Some(""),
        json!({"name": "n"}),
        &[&fork_point],
        &[&pl, &alice],
    );
    let (name_id, status) = f.rooms.receive(&f.room, name).await.expect("processed");
    assert_eq!(status, Status::Accepted);
    let view = f.rooms.view(&f.room).expect("view");
    assert_eq!(view.extremities.len(), 2, "two forward extremities");
    assert_eq!(f.state("m.room.topic", ""), Some(topic));
    assert_eq!(
        f.state("m.room.name", ""),
        Some(name_id),
        "both forks' state is current"
    );
    let merged = f
        .rooms
        .send(
            &f.room,
            &user("alice"),
            "m.room.message",
            None,
            json!({"body": "merge"}),
        )
        .await
        .expect("send");
    assert_eq!(
        f.rooms.view(&f.room).expect("view").extremities,
        vec![merged],
        "a new event merges the forks"
    );
}

#[tokio::test]
async fn bad_signatures_and_unknown_references_are_refused_unstored() {
    let f = fixture().await;
    let before = f.rooms.view(&f.room).expect("view");
    let pl = f.state("m.room.power_levels", "").expect("pl");
    let alice = f
        .state("m.room.member", user("alice").as_str())
        .expect("alice");
    let mut forged = f.event(
        "alice",
        "m.room.message",
        None,
        json!({"body": "x"}),
        &[&f.tip()],
        &[&pl, &alice],
    );
    forged.insert(
        "origin_server_ts".into(),
        CanonicalJsonValue::Integer(Int::from(7u32)),
    );
    let err = f.rooms.receive(&f.room, forged).await.expect_err("forged");
    assert!(err.message.contains("signature"), "{err}");
    let unknown =
        OwnedEventId::try_from("$unknownunknownunknownunknownunknownunknown1").expect("id");
    let dangling = f.event(
        "alice",
        "m.room.message",
        None,
        json!({"body": "x"}),
        &[&unknown],
        &[&pl, &alice],
    );
    let err = f
        .rooms
        .receive(&f.room, dangling)
        .await
        .expect_err("unknown prev");
    assert_eq!(err.errcode, "M_NOT_FOUND", "{err}");
    let after = f.rooms.view(&f.room).expect("view");
    assert_eq!(
        (after.state, after.timeline),
        (before.state, before.timeline)
    );
}

/// What a `send_join` for `name` answers (state and auth chain parsed).
async fn join_answer(f: &Fixture, name: &str, omit_members: bool) -> (Vec<Value>, Vec<Value>) {
    let (rules, pl) = (
        f.state("m.room.join_rules", "").expect("rules"),
        f.state("m.room.power_levels", "").expect("pl"),
    );
    let member = user(name);
    let join = f.event(
        name,
        "m.room.member",
        Some(member.as_str()),
        json!({"membership": "join"}),
        &[&f.tip()],
        &[&rules, &pl],
    );
    let id = checks::check(&f.rooms.keys, &RoomVersionId::V12, join.clone())
        .await
        .expect("valid join")
        .event_id;
    let origin = ruma::ServerName::parse("hearth.test").expect("name");
    let answer = f
        .rooms
        .send_join(&f.room, &id, &origin, join, omit_members)
        .await
        .expect("joined");
    assert_eq!(answer.members_omitted, omit_members);
    let parse = |raw: Vec<Box<serde_json::value::RawValue>>| -> Vec<Value> {
        raw.iter()
            .map(|r| serde_json::from_str(r.get()).expect("JSON"))
            .collect()
    };
    (parse(answer.state), parse(answer.auth_chain))
}

fn members_in(state: &[Value]) -> BTreeSet<String> {
    state
        .iter()
        .filter(|e| e["type"] == "m.room.member")
        .map(|e| e["state_key"].as_str().expect("state key").to_owned())
        .collect()
}

#[tokio::test]
async fn omit_members_answers_keep_only_the_heroes_members_and_no_state_in_the_chain() {
    let f = fixture().await;
    let say = |sender: &str, target: &str, membership: &str| {
        let (sender, target) = (user(sender), user(target));
        let membership = membership.to_owned();
        let rooms = &f.rooms;
        let room = &f.room;
        async move {
            rooms
                .send(
                    room,
                    &sender,
                    "m.room.member",
                    Some(target.as_str()),
                    json!({ "membership": membership }),
                )
                .await
                .expect("membership")
        }
    };
    // The first power levels leave the state but stay in its auth chain.
    let first_pl = f.state("m.room.power_levels", "").expect("pl");
    let content = json!({"state_default": 50});
    f.rooms
        .send(
            &f.room,
            &user("alice"),
            "m.room.power_levels",
            Some(""),
            content,
        )
        .await
        .expect("power levels");
    for name in ["m1", "m2", "m3"] {
        say(name, name, "join").await;
    }
    say("m3", "m3", "leave").await;
    say("alice", "m4", "invite").await;
    say("m5", "m5", "join").await;
    let all = members_in(&join_answer(&f, "full", false).await.0);
    assert_eq!(all.len(), 7, "everyone, the left one too: {all:?}");

    // No name: the first five joined or invited, by stream order.
    let (state, chain) = join_answer(&f, "carol", true).await;
    let heroes: BTreeSet<String> = ["alice", "bob", "m1", "m2", "m4"]
        .map(|n| user(n).to_string())
        .into();
    assert_eq!(members_in(&state), heroes);
    let others = state.iter().filter(|e| e["type"] != "m.room.member");
    let view = f.rooms.view(&f.room).expect("view");
    let non_members = view
        .state
        .keys()
        .filter(|(kind, _)| *kind != StateEventType::RoomMember);
    assert_eq!(others.count(), non_members.count());
    assert!(chain.iter().all(|e| !state.contains(e)), "{chain:?}");
    let first_pl = f.rooms.event_object(&first_pl).expect("first power levels");
    assert!(chain.contains(&serde_json::to_value(first_pl).expect("JSON")));

    // A named room needs no heroes.
    f.rooms
        .send(
            &f.room,
            &user("alice"),
            "m.room.name",
            Some(""),
            json!({"name": "Den"}),
        )
        .await
        .expect("name");
    let (state, _) = join_answer(&f, "dave", true).await;
    assert_eq!(members_in(&state), BTreeSet::new());
}
