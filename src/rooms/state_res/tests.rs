use std::cell::Cell;

use super::*;

fn id(name: &str) -> OwnedEventId {
    OwnedEventId::try_from(format!("${name}")).expect("id")
}

/// An auth DAG in memory, counting what is read of it.
struct Graph {
    auth: HashMap<OwnedEventId, Vec<OwnedEventId>>,
    reads: Cell<usize>,
}

impl Graph {
    fn new(edges: impl IntoIterator<Item = (OwnedEventId, Vec<OwnedEventId>)>) -> Self {
        Self {
            auth: edges.into_iter().collect(),
            reads: Cell::new(0),
        }
    }

    fn of(edges: &[(&str, &[&str])]) -> Self {
        Self::new(
            edges
                .iter()
                .map(|(e, auth)| (id(e), auth.iter().map(|a| id(a)).collect())),
        )
    }
}

impl AuthGraph for Graph {
    fn auth_events(&self, id: &EventId) -> Option<Vec<OwnedEventId>> {
        self.reads.set(self.reads.get() + 1);
        self.auth.get(id).cloned()
    }

    fn find_citing(&self, id: &EventId, visit: &mut dyn FnMut(&EventId) -> bool) -> bool {
        self.reads.set(self.reads.get() + 1);
        let mut citing = self
            .auth
            .iter()
            .filter(|(_, auth)| auth.iter().any(|a| a == id));
        citing.any(|(child, _)| visit(child))
    }
}

/// The auth difference taken the long way: the full chain of each
/// state, their union minus their intersection.
fn naive_difference(states: &[StateMap<OwnedEventId>], graph: &Graph) -> HashSet<OwnedEventId> {
    let auth_of = |id: &EventId| graph.auth.get(id).cloned();
    let chains: Vec<HashSet<OwnedEventId>> = states
        .iter()
        .map(|s| auth_chain(s.values().cloned(), &auth_of))
        .collect();
    let union: HashSet<_> = chains.iter().flatten().cloned().collect();
    union
        .into_iter()
        .filter(|e| !chains.iter().all(|c| c.contains(e)))
        .collect()
}

fn members(entries: &[(&str, &str)]) -> StateMap<OwnedEventId> {
    entries
        .iter()
        .map(|(key, e)| ((StateEventType::RoomMember, (*key).to_owned()), id(e)))
        .collect()
}

/// Checks the sets against the naive difference: same union, and no
/// event in every set.
fn assert_exact(states: &[StateMap<OwnedEventId>], graph: &Graph) {
    let sets = difference_sets(states, graph);
    let union: HashSet<OwnedEventId> = sets.iter().flatten().cloned().collect();
    assert_eq!(union, naive_difference(states, graph), "{states:?}");
    if states.len() > 1 {
        let in_all = union.iter().filter(|e| sets.iter().all(|s| s.contains(e)));
        assert_eq!(in_all.count(), 0, "the sets must not share an event");
    }
}

/// A room of `n` members, each invited by alice: create <- alice <-
/// pl <- invite_i <- member_i. The shared state holds them all.
fn room_of(
    n: usize,
) -> (
    Vec<(OwnedEventId, Vec<OwnedEventId>)>,
    StateMap<OwnedEventId>,
) {
    let mut edges = vec![
        (id("create"), vec![]),
        (id("alice"), vec![id("create")]),
        (id("pl"), vec![id("create"), id("alice")]),
    ];
    let mut shared = members(&[("create", "create"), ("alice", "alice")]);
    for n in 0..n {
        let (invite, member) = (id(&format!("i{n}")), id(&format!("m{n}")));
        edges.push((invite.clone(), vec![id("create"), id("pl"), id("alice")]));
        edges.push((member.clone(), vec![id("create"), id("pl"), invite]));
        shared.insert((StateEventType::RoomMember, format!("m{n}")), member);
    }
    (edges, shared)
}

#[test]
fn a_fork_over_shared_auth_events_does_not_walk_the_whole_room() {
    // The states differ only in their power levels, whose chains hold
    // nothing the members' chains do not.
    let (mut edges, shared) = room_of(200);
    edges.push((id("pl2"), vec![id("create"), id("alice"), id("pl")]));
    let graph = Graph::new(edges);
    let with_pl = |pl: &str| {
        let mut state = shared.clone();
        state.insert((StateEventType::RoomPowerLevels, String::new()), id(pl));
        state
    };
    let states = [with_pl("pl2"), with_pl("pl")];
    let sets = difference_sets(&states, &graph);
    assert!(sets.iter().all(|s| s.is_empty()), "{sets:?}");
    assert!(graph.reads.get() < 20, "{} reads", graph.reads.get());
    assert!(naive_difference(&states, &graph).is_empty());
}

#[test]
fn a_fork_over_a_rejoin_reads_the_fork_not_the_room() {
    // bob joined, left and joined again; one side has not seen the
    // rejoin. His leave is in the difference, and no event the sides
    // share leads to it: walked down from the shared state, the whole
    // room was read to learn that.
    let (mut edges, shared) = room_of(200);
    edges.push((id("join1"), vec![id("create"), id("pl")]));
    edges.push((id("leave"), vec![id("create"), id("pl"), id("join1")]));
    edges.push((id("join2"), vec![id("create"), id("pl"), id("leave")]));
    let graph = Graph::new(edges);
    let with_bob = |bob: &str| {
        let mut state = shared.clone();
        state.insert((StateEventType::RoomMember, "bob".to_owned()), id(bob));
        state
    };
    let states = [with_bob("join2"), with_bob("leave")];
    let sets = difference_sets(&states, &graph);
    let first: HashSet<OwnedEventId> = sets[0].iter().cloned().collect();
    assert_eq!(first, [id("leave")].into_iter().collect());
    assert!(sets[1].is_empty(), "{sets:?}");
    assert!(graph.reads.get() < 20, "{} reads", graph.reads.get());
    assert_eq!(naive_difference(&states, &graph), first);
}

#[test]
fn difference_sets_give_exactly_the_auth_difference() {
    // create <- pl <- (m1, m2, m3); m3 <- m3b; pl <- pl2 <- m4; shared
    // events reach some of what the differing events reach.
    let graph = Graph::of(&[
        ("create", &[]),
        ("pl", &["create"]),
        ("m1", &["create", "pl"]),
        ("m2", &["create", "pl"]),
        ("m3", &["create", "pl"]),
        ("m3b", &["create", "pl", "m3"]),
        ("pl2", &["create", "pl", "m1"]),
        ("m4", &["create", "pl2"]),
        ("m5", &["create", "pl2", "m2"]),
        // x reaches the shared m6 only through y, which no state holds.
        ("x", &["create"]),
        ("y", &["create", "x"]),
        ("m6", &["create", "y"]),
        ("o1", &["create", "x"]),
        ("o2", &["create"]),
    ]);
    let cases = [
        vec![
            members(&[("c", "create"), ("1", "m1"), ("3", "m3")]),
            members(&[("c", "create"), ("1", "m1"), ("3", "m3b")]),
        ],
        vec![
            members(&[("c", "create"), ("2", "m2"), ("4", "m4")]),
            members(&[("c", "create"), ("2", "m2"), ("4", "m5")]),
            members(&[("c", "create"), ("3", "m3b")]),
        ],
        // A key only one side holds: the shared m2 reaches pl, which
        // only that side's own chain also reaches.
        vec![
            members(&[("c", "create"), ("2", "m2"), ("3", "m3b")]),
            members(&[("c", "create"), ("2", "m2")]),
        ],
        vec![
            members(&[("c", "create"), ("6", "m6"), ("o", "o1")]),
            members(&[("c", "create"), ("6", "m6"), ("o", "o2")]),
        ],
        // Nothing shared at all.
        vec![members(&[("4", "m4")]), members(&[("3", "m3b")])],
        vec![members(&[("c", "create"), ("1", "m1")])],
    ];
    for states in cases {
        assert_exact(&states, &graph);
    }
}

/// A pseudo-random DAG: each event cites up to three earlier ones.
fn random_dag(seed: u64, n: usize) -> Vec<(OwnedEventId, Vec<OwnedEventId>)> {
    let mut x = seed;
    let mut next = move || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) as usize
    };
    (0..n)
        .map(|e| {
            let auth = (0..next() % 4)
                .filter(|_| e > 0)
                .map(|_| id(&format!("e{}", next() % e)))
                .collect::<HashSet<_>>();
            (id(&format!("e{e}")), auth.into_iter().collect())
        })
        .collect()
}

#[test]
fn difference_and_subgraph_match_their_definitions_on_random_dags() {
    for seed in 0..40u64 {
        let graph = Graph::new(random_dag(seed, 60));
        let pick = |from: usize| -> StateMap<OwnedEventId> {
            (from..60)
                .step_by(3 + seed as usize % 4)
                .map(|e| {
                    (
                        (StateEventType::RoomMember, format!("k{}", e % 9)),
                        id(&format!("e{e}")),
                    )
                })
                .collect()
        };
        let states = [
            pick(seed as usize % 7),
            pick(seed as usize % 5 + 1),
            pick(2),
        ];
        assert_exact(&states, &graph);

        // The subgraph, by its definition: conflicted events, and the
        // events both below one conflicted event and above another.
        let auth_of = |id: &EventId| graph.auth.get(id).cloned();
        let conflicted: StateMap<Vec<OwnedEventId>> = (0..3)
            .map(|k| {
                let events = [k * 11 + 20, k * 7 + 40, k * 13 + 5];
                let events = events.map(|e| id(&format!("e{}", (e + seed as usize) % 60)));
                (
                    (StateEventType::RoomMember, format!("c{k}")),
                    events.to_vec(),
                )
            })
            .collect();
        let set: HashSet<OwnedEventId> = conflicted.values().flatten().cloned().collect();
        let mut expected: HashSet<OwnedEventId> = set.clone();
        for below in auth_chain(set.iter().cloned(), &auth_of) {
            if auth_chain([below.clone()], &auth_of)
                .iter()
                .any(|a| set.contains(a))
            {
                expected.insert(below);
            }
        }
        let subgraph: HashSet<OwnedEventId> = conflicted_subgraph(&conflicted, &auth_of)
            .into_iter()
            .collect();
        assert_eq!(subgraph, expected, "seed {seed}");
    }
}
