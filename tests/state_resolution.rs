//! State resolution on named classic conflicts: v1 (room version 1,
//! hearth's own), v2 (room version 10) and v2.1 (room version 12, where the
//! creator stands above the power-levels map), the last two through
//! hearth's wrapper of ruma's algorithm.

use std::collections::HashMap;

use hearth::rooms::{event::Pdu, state_res::resolve};
use ruma::{
    events::StateEventType, state_res::StateMap, MilliSecondsSinceUnixEpoch, OwnedEventId,
    OwnedRoomId, OwnedUserId, RoomVersionId, UInt,
};
use serde_json::{json, Value};

const ALICE: &str = "@alice:hearth.test";
const BOB: &str = "@bob:hearth.test";
const CHARLIE: &str = "@charlie:hearth.test";
const DAVE: &str = "@dave:hearth.test";

/// A room built by hand: events, and the state after each fork's tip.
struct Room {
    version: RoomVersionId,
    events: HashMap<OwnedEventId, Pdu>,
    room_id: OwnedRoomId,
    ts: u64,
}

impl Room {
    fn v12(&self) -> bool {
        self.version == RoomVersionId::V12
    }

    fn id(&self, name: &str) -> OwnedEventId {
        // v12 room IDs derive from the create event's ID, which has no server part.
        let text = if self.v12() {
            format!("${name}")
        } else {
            format!("${name}:hearth.test")
        };
        OwnedEventId::try_from(text.as_str()).expect("event id")
    }

    /// Adds a state event; `ts_offset` lets a test order concurrent events.
    fn state(
        &mut self,
        name: &str,
        sender: &str,
        (kind, key): (&str, &str),
        content: Value,
        auth: &[&str],
        prev: &[&str],
    ) -> OwnedEventId {
        self.ts += 1000;
        let id = self.id(name);
        let pdu = Pdu {
            event_id: id.clone(),
            room_id: (!(self.v12() && kind == "m.room.create")).then(|| self.room_id.clone()),
            sender: OwnedUserId::try_from(sender).expect("user"),
            origin_server_ts: MilliSecondsSinceUnixEpoch(UInt::try_from(self.ts).expect("ts")),
            kind: kind.into(),
            content: serde_json::value::to_raw_value(&content).expect("content"),
            state_key: Some(key.to_owned()),
            prev_events: prev.iter().map(|p| self.id(p)).collect(),
            auth_events: auth.iter().map(|a| self.id(a)).collect(),
            redacts: None,
            depth: UInt::from(self.events.len() as u32 + 1),
            rejected: false,
        };
        self.events.insert(id.clone(), pdu);
        id
    }

    /// Power levels: Alice is top (by PL in v10, as creator in v12).
    fn power(&self, users: &[(&str, i64)]) -> Value {
        let mut map: serde_json::Map<String, Value> = users
            .iter()
            .map(|(u, l)| (u.to_string(), json!(l)))
            .collect();
        if self.v12() {
            map.remove(ALICE);
        }
        json!({"users": map, "users_default": 0, "events_default": 0, "state_default": 50, "ban": 50, "kick": 50,
               "events": {"m.room.power_levels": 50}})
    }

    /// create, Alice joins, power levels (Bob 100 or `bob_level`), public join rules, Bob and Charlie join.
    fn new(version: RoomVersionId, bob_level: i64) -> Self {
        let v12 = version == RoomVersionId::V12;
        let room_id = OwnedRoomId::try_from(if v12 { "!CREATE" } else { "!room:hearth.test" })
            .expect("room id");
        let mut room = Room {
            version,
            events: HashMap::new(),
            room_id,
            ts: 1_000_000,
        };
        let create = if v12 {
            json!({"room_version": "12"})
        } else {
            json!({"creator": ALICE, "room_version": room.version.as_str()})
        };
        let join = json!({"membership": "join"});
        // In v12 the create event is implied: auth_events never list it.
        let c: &[&str] = if v12 { &[] } else { &["CREATE"] };
        let with = |extra: &[&'static str]| -> Vec<&'static str> {
            c.iter().copied().chain(extra.iter().copied()).collect()
        };
        room.state("CREATE", ALICE, ("m.room.create", ""), create, &[], &[]);
        room.state(
            "IMA",
            ALICE,
            ("m.room.member", ALICE),
            join.clone(),
            c,
            &["CREATE"],
        );
        let pl = room.power(&[(ALICE, 100), (BOB, bob_level), (CHARLIE, 0)]);
        room.state(
            "IPOWER",
            ALICE,
            ("m.room.power_levels", ""),
            pl,
            &with(&["IMA"]),
            &["IMA"],
        );
        room.state(
            "IJR",
            ALICE,
            ("m.room.join_rules", ""),
            json!({"join_rule": "public"}),
            &with(&["IMA", "IPOWER"]),
            &["IPOWER"],
        );
        room.state(
            "IMB",
            BOB,
            ("m.room.member", BOB),
            join.clone(),
            &with(&["IJR", "IPOWER"]),
            &["IJR"],
        );
        room.state(
            "IMC",
            CHARLIE,
            ("m.room.member", CHARLIE),
            join,
            &with(&["IJR", "IPOWER"]),
            &["IMB"],
        );
        room
    }

    /// The state after the set-up, plus `changes` (event names).
    fn state_with(&self, changes: &[&str]) -> StateMap<OwnedEventId> {
        ["CREATE", "IMA", "IPOWER", "IJR", "IMB", "IMC"]
            .iter()
            .chain(changes)
            .map(|name| {
                let pdu = &self.events[&self.id(name)];
                (
                    (
                        StateEventType::from(pdu.kind.to_string()),
                        pdu.state_key.clone().unwrap_or_default(),
                    ),
                    pdu.event_id.clone(),
                )
            })
            .collect()
    }

    /// Resolves the forks in both orders, which must agree.
    fn resolve(&self, forks: &[&[&str]]) -> StateMap<OwnedEventId> {
        let rules = self.version.rules().expect("rules");
        let run = |forks: &[&[&str]]| {
            let states: Vec<_> = forks
                .iter()
                .map(|changes| self.state_with(changes))
                .collect();
            resolve(&rules, &states, |id| self.events.get(id).cloned()).expect("resolves")
        };
        let state = run(forks);
        let reversed: Vec<&[&str]> = forks.iter().rev().copied().collect();
        assert_eq!(
            state,
            run(&reversed),
            "{}: the order of forks must not matter",
            self.version
        );
        state
    }

    fn at(&self, state: &StateMap<OwnedEventId>, kind: &str, key: &str) -> Option<String> {
        state
            .get(&(StateEventType::from(kind), key.to_owned()))
            .map(|id| {
                let text = id.as_str().trim_start_matches('$');
                text.split(':').next().unwrap_or(text).to_owned()
            })
    }

    fn auth(&self, extra: &[&'static str]) -> Vec<&'static str> {
        let mut auth = if self.v12() { vec![] } else { vec!["CREATE"] };
        auth.extend_from_slice(extra);
        auth
    }
}

fn versions() -> [RoomVersionId; 3] {
    [RoomVersionId::V1, RoomVersionId::V10, RoomVersionId::V12]
}

/// The versions whose algorithm looks past depth (v2 and v2.1).
fn v2_versions() -> [RoomVersionId; 2] {
    [RoomVersionId::V10, RoomVersionId::V12]
}

#[test]
fn a_ban_racing_a_demotion_loses() {
    for version in versions() {
        let mut room = Room::new(version.clone(), 50);
        // Fork A: Alice demotes Bob. Fork B: Bob (ban level 50) bans Charlie.
        let demoted = room.power(&[(ALICE, 100), (BOB, 0), (CHARLIE, 0)]);
        room.state(
            "PA",
            ALICE,
            ("m.room.power_levels", ""),
            demoted,
            &room.auth(&["IMA", "IPOWER"]),
            &["IMC"],
        );
        room.state(
            "MB",
            BOB,
            ("m.room.member", CHARLIE),
            json!({"membership": "ban"}),
            &room.auth(&["IMB", "IPOWER", "IMC"]),
            &["IMC"],
        );
        let state = room.resolve(&[&["PA"], &["MB"]]);
        assert_eq!(
            room.at(&state, "m.room.power_levels", "").as_deref(),
            Some("PA"),
            "{version}"
        );
        assert_eq!(
            room.at(&state, "m.room.member", CHARLIE).as_deref(),
            Some("IMC"),
            "{version}: the ban must not apply"
        );
    }
}

#[test]
fn a_topic_fight_between_two_admins_goes_to_the_later_topic() {
    for version in versions() {
        let mut room = Room::new(version.clone(), 100);
        room.state(
            "TA",
            ALICE,
            ("m.room.topic", ""),
            json!({"topic": "alice's"}),
            &room.auth(&["IMA", "IPOWER"]),
            &["IMC"],
        );
        room.state(
            "TB",
            BOB,
            ("m.room.topic", ""),
            json!({"topic": "bob's"}),
            &room.auth(&["IMB", "IPOWER"]),
            &["IMC"],
        );
        // Same mainline position: the later origin_server_ts (TB) is applied last and wins.
        let state = room.resolve(&[&["TA"], &["TB"]]);
        assert_eq!(
            room.at(&state, "m.room.topic", "").as_deref(),
            Some("TB"),
            "{version}"
        );
    }
}

#[test]
fn a_join_racing_an_invite_only_switch_is_refused_except_by_v1() {
    for version in versions() {
        let mut room = Room::new(version.clone(), 50);
        room.state(
            "JR",
            ALICE,
            ("m.room.join_rules", ""),
            json!({"join_rule": "invite"}),
            &room.auth(&["IMA", "IPOWER"]),
            &["IMC"],
        );
        room.state(
            "MD",
            DAVE,
            ("m.room.member", DAVE),
            json!({"membership": "join"}),
            &room.auth(&["IJR", "IPOWER"]),
            &["IMC"],
        );
        let state = room.resolve(&[&["JR"], &["MD"]]);
        assert_eq!(
            room.at(&state, "m.room.join_rules", "").as_deref(),
            Some("JR"),
            "{version}"
        );
        // v1's flaw, fixed by v2: a key only one side holds is not a
        // conflict, so Dave's join survives, as it does on Synapse.
        let expected = (version == RoomVersionId::V1).then(|| "MD".to_owned());
        assert_eq!(
            room.at(&state, "m.room.member", DAVE),
            expected,
            "{version}: Dave's join under invite-only"
        );
    }
}

#[test]
fn a_demoted_admin_cannot_reset_power_levels_concurrently() {
    for version in versions() {
        let mut room = Room::new(version.clone(), 75);
        // Fork A: Alice (100) demotes Bob (75) to 25. Fork B: Bob, still 75
        // there, raises his ally Charlie to 75. Alice's event sorts first
        // (greater sender power); Bob's then fails: at 25 he may not change
        // power levels (50 needed).
        let demote_bob = room.power(&[(ALICE, 100), (BOB, 25), (CHARLIE, 0)]);
        room.state(
            "PA",
            ALICE,
            ("m.room.power_levels", ""),
            demote_bob,
            &room.auth(&["IMA", "IPOWER"]),
            &["IMC"],
        );
        let raise_charlie = room.power(&[(ALICE, 100), (BOB, 75), (CHARLIE, 75)]);
        room.state(
            "PB",
            BOB,
            ("m.room.power_levels", ""),
            raise_charlie,
            &room.auth(&["IMB", "IPOWER"]),
            &["IMC"],
        );
        let state = room.resolve(&[&["PA"], &["PB"]]);
        assert_eq!(
            room.at(&state, "m.room.power_levels", "").as_deref(),
            Some("PA"),
            "{version}"
        );
    }
}

#[test]
fn mainline_position_beats_timestamps() {
    for version in v2_versions() {
        let mut room = Room::new(version.clone(), 100);
        // Fork A: a new power-levels event, then a topic under it (older
        // timestamp). Fork B: a topic under the old power levels, later.
        topic_under_two_power_levels(&mut room);
        let state = room.resolve(&[&["PL2", "T2"], &["T1"]]);
        assert_eq!(
            room.at(&state, "m.room.power_levels", "").as_deref(),
            Some("PL2"),
            "{version}"
        );
        assert_eq!(
            room.at(&state, "m.room.topic", "").as_deref(),
            Some("T2"),
            "{version}: the later mainline position wins"
        );
    }
}

/// The fork of `mainline_position_beats_timestamps`: PL2 then T2 on one
/// side, T1 (deeper, under the old power levels) on the other.
fn topic_under_two_power_levels(room: &mut Room) {
    let pl2 = room.power(&[(ALICE, 100), (BOB, 100), (CHARLIE, 50)]);
    room.state(
        "PL2",
        ALICE,
        ("m.room.power_levels", ""),
        pl2,
        &room.auth(&["IMA", "IPOWER"]),
        &["IMC"],
    );
    room.state(
        "T2",
        ALICE,
        ("m.room.topic", ""),
        json!({"topic": "under PL2"}),
        &room.auth(&["IMA", "PL2"]),
        &["PL2"],
    );
    room.state(
        "T1",
        BOB,
        ("m.room.topic", ""),
        json!({"topic": "under IPOWER"}),
        &room.auth(&["IMB", "IPOWER"]),
        &["IMC"],
    );
}

#[test]
fn v1_a_plain_conflict_goes_to_the_deepest_allowed_event() {
    let mut room = Room::new(RoomVersionId::V1, 100);
    topic_under_two_power_levels(&mut room);
    let state = room.resolve(&[&["PL2", "T2"], &["T1"]]);
    assert_eq!(
        room.at(&state, "m.room.power_levels", "").as_deref(),
        Some("PL2")
    );
    // v2 would choose T2 by mainline; v1 knows only depth.
    assert_eq!(room.at(&state, "m.room.topic", "").as_deref(), Some("T1"));
}

#[test]
fn v1_equal_depths_go_to_the_lowest_sha1_of_the_event_id() {
    let mut room = Room::new(RoomVersionId::V1, 100);
    for (name, topic) in [("TX", "x"), ("TY", "y")] {
        room.state(
            name,
            ALICE,
            ("m.room.topic", ""),
            json!({"topic": topic}),
            &room.auth(&["IMA", "IPOWER"]),
            &["IMC"],
        );
        let id = room.id(name);
        room.events.get_mut(&id).expect("event").depth = UInt::from(7_u32);
    }
    // sha1("$TX:hearth.test") = b71d30…, sha1("$TY:hearth.test") = 906684…
    // (Python's hashlib).
    let state = room.resolve(&[&["TX"], &["TY"]]);
    assert_eq!(room.at(&state, "m.room.topic", "").as_deref(), Some("TY"));
}

#[test]
fn v1_when_no_candidate_is_allowed_the_shallowest_stays() {
    let mut room = Room::new(RoomVersionId::V1, 100);
    // Charlie (level 0) may not set the topic (state_default 50) on either side.
    for (name, topic) in [("TC1", "first"), ("TC2", "second")] {
        room.state(
            name,
            CHARLIE,
            ("m.room.topic", ""),
            json!({"topic": topic}),
            &room.auth(&["IMC", "IPOWER"]),
            &["IMC"],
        );
    }
    let state = room.resolve(&[&["TC1"], &["TC2"]]);
    assert_eq!(room.at(&state, "m.room.topic", "").as_deref(), Some("TC1"));
}

#[test]
fn v1_an_auth_conflict_stops_at_the_first_disallowed_event() {
    let mut room = Room::new(RoomVersionId::V1, 75);
    // Three forks, in depth order: Alice demotes Bob to 25; Bob, at 75 on
    // his side, raises Charlie to 75; Alice gives Dave 50.
    let demote = room.power(&[(ALICE, 100), (BOB, 25), (CHARLIE, 0)]);
    room.state(
        "PA",
        ALICE,
        ("m.room.power_levels", ""),
        demote,
        &room.auth(&["IMA", "IPOWER"]),
        &["IMC"],
    );
    let raise = room.power(&[(ALICE, 100), (BOB, 75), (CHARLIE, 75)]);
    room.state(
        "PB",
        BOB,
        ("m.room.power_levels", ""),
        raise,
        &room.auth(&["IMB", "IPOWER"]),
        &["IMC"],
    );
    let dave = room.power(&[(ALICE, 100), (BOB, 75), (CHARLIE, 0), (DAVE, 50)]);
    room.state(
        "PD",
        ALICE,
        ("m.room.power_levels", ""),
        dave,
        &room.auth(&["IMA", "IPOWER"]),
        &["IMC"],
    );
    // PB is refused under PA, and the walk stops there: PD, though
    // allowed under PA, is never tried.
    let state = room.resolve(&[&["PA"], &["PB"], &["PD"]]);
    assert_eq!(
        room.at(&state, "m.room.power_levels", "").as_deref(),
        Some("PA")
    );
}
