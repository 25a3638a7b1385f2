//! State resolution: through ruma's implementation of algorithm v2 (room
//! versions 2-11) and v2.1 (room version 12), with the inputs ruma leaves
//! to its caller (each state's full auth chain and, for v2.1, the
//! conflicted state subgraph), and algorithm v1 (room version 1), which
//! ruma does not implement, written here. Spec: rooms/v1 and rooms/v2
//! "State resolution", rooms/v12 "Conflicted state subgraph".

use std::collections::{BTreeMap, HashSet};

use ruma::{
    events::StateEventType,
    room_version_rules::{AuthorizationRules, RoomVersionRules, StateResolutionVersion},
    state_res::{check_state_dependent_auth_rules, utils::event_id_set::EventIdSet, StateMap},
    EventId, OwnedEventId,
};

use super::event::Pdu;

/// Resolves forked states into one. `fetch` returns any event of the room
/// we hold; events it cannot find are left out, as the spec asks.
pub fn resolve(
    rules: &RoomVersionRules,
    states: &[StateMap<OwnedEventId>],
    fetch: impl Fn(&EventId) -> Option<Pdu>,
) -> Result<StateMap<OwnedEventId>, String> {
    resolve_with(rules, states, &fetch, |id| {
        fetch(id).map(|pdu| pdu.auth_events)
    })
}

/// [`resolve`] with a cheaper way to read an event's `auth_events` than
/// fetching it whole: auth chains hold most of a room's state.
pub fn resolve_with(
    rules: &RoomVersionRules,
    states: &[StateMap<OwnedEventId>],
    fetch: &impl Fn(&EventId) -> Option<Pdu>,
    auth_of: impl Fn(&EventId) -> Option<Vec<OwnedEventId>>,
) -> Result<StateMap<OwnedEventId>, String> {
    let StateResolutionVersion::V2(v2_rules) = &rules.state_res else {
        return Ok(resolve_v1(&rules.authorization, states, fetch));
    };
    ruma::state_res::resolve(
        &rules.authorization,
        v2_rules,
        states,
        difference_sets(states, &auth_of),
        fetch,
        |conflicted| Some(conflicted_subgraph(conflicted, &auth_of)),
    )
    .map_err(|e| format!("state resolution failed: {e}"))
}

/// What ruma needs of each state's full auth chain: it only takes their
/// union minus their intersection (the auth difference). The events every
/// state holds, most of a large room, add one chain C to all of them, and
/// each state's own events give a chain X_i. The difference is then
/// ⋃X − ∩X − C; each set given is X_i − ∩X − C, whose union is that
/// difference and whose intersection is empty. C is only walked as far
/// as it takes to find the candidates ⋃X − ∩X in it: in most forks they
/// all are (the room's create, power levels, join rules), found among the
/// first common events' chains, so a large room is not walked whole.
fn difference_sets(
    states: &[StateMap<OwnedEventId>],
    auth_of: &impl Fn(&EventId) -> Option<Vec<OwnedEventId>>,
) -> Vec<EventIdSet<OwnedEventId>> {
    let held: Vec<HashSet<&OwnedEventId>> = states.iter().map(|s| s.values().collect()).collect();
    let Some((first, others)) = held.split_first() else {
        return Vec::new();
    };
    let common: HashSet<&OwnedEventId> = first
        .iter()
        .filter(|id| others.iter().all(|h| h.contains(*id)))
        .copied()
        .collect();
    let own_chains: Vec<HashSet<OwnedEventId>> = held
        .iter()
        .map(|held| {
            let own = held.iter().filter(|id| !common.contains(*id));
            auth_chain(own.map(|id| (*id).clone()), auth_of)
        })
        .collect();
    let in_every_own = |id: &OwnedEventId| own_chains.iter().all(|c| c.contains(id));
    let candidates: HashSet<&OwnedEventId> = own_chains
        .iter()
        .flatten()
        .filter(|id| !in_every_own(id))
        .collect();
    let shared = found_in_chain(&candidates, common.iter().copied(), auth_of);
    own_chains
        .iter()
        .map(|chain| {
            chain
                .iter()
                .filter(|id| candidates.contains(id) && !shared.contains(*id))
                .cloned()
                .collect()
        })
        .collect()
}

/// Which of `wanted` are in the auth chain of `starts`, walking one
/// start's chain after another until all are found.
fn found_in_chain<'a>(
    wanted: &HashSet<&'a OwnedEventId>,
    starts: impl Iterator<Item = &'a OwnedEventId>,
    auth_of: &impl Fn(&EventId) -> Option<Vec<OwnedEventId>>,
) -> HashSet<OwnedEventId> {
    let mut found = HashSet::new();
    let mut seen = HashSet::new();
    for start in starts {
        if found.len() == wanted.len() {
            break;
        }
        let mut todo = auth_of(start).unwrap_or_default();
        while let Some(id) = todo.pop() {
            if seen.contains(&id) {
                continue;
            }
            if let Some(auth) = auth_of(&id) {
                todo.extend(auth);
            }
            if wanted.contains(&id) {
                found.insert(id.clone());
            }
            seen.insert(id);
        }
    }
    found
}

type StateKey = (StateEventType, String);

/// Algorithm v1. Where the spec is silent this does what Synapse does, as
/// the other servers of a version-1 room almost surely run it: a key held
/// by only some of the states is not a conflict, a conflicted event we do
/// not hold is left out, and when every candidate for a non-auth key fails
/// auth the one with the least depth is kept. Each pass resolves its keys
/// against the state as the previous pass left it, so the order of keys
/// within a pass does not matter.
fn resolve_v1(
    rules: &AuthorizationRules,
    states: &[StateMap<OwnedEventId>],
    fetch: &impl Fn(&EventId) -> Option<Pdu>,
) -> StateMap<OwnedEventId> {
    let (mut resolved, conflicted) = separate(states, fetch);
    let passes = [
        Some(StateEventType::RoomPowerLevels),
        Some(StateEventType::RoomJoinRules),
        Some(StateEventType::RoomMember),
        None,
    ];
    for pass in passes {
        let winners: Vec<(StateKey, OwnedEventId)> = conflicted
            .iter()
            .filter(|(key, _)| match &pass {
                Some(kind) => key.0 == *kind,
                None => !resolved.contains_key(*key),
            })
            .filter_map(|(key, events)| {
                let lookup = |kind: &StateEventType, key: &str| {
                    resolved.get(&(kind.clone(), key.to_owned())).cloned()
                };
                let winner = match pass {
                    Some(_) => first_run_allowed(rules, events, key, lookup, fetch),
                    None => first_allowed(rules, events, lookup, fetch),
                };
                Some((key.clone(), winner?))
            })
            .collect();
        resolved.extend(winners);
    }
    resolved
}

/// The keys all states agree on (or only some hold), and for the others
/// the conflicting events we hold, sorted by descending depth, then
/// ascending SHA-1 of the event ID.
fn separate(
    states: &[StateMap<OwnedEventId>],
    fetch: &impl Fn(&EventId) -> Option<Pdu>,
) -> (StateMap<OwnedEventId>, BTreeMap<StateKey, Vec<Pdu>>) {
    let mut candidates: BTreeMap<StateKey, Vec<OwnedEventId>> = BTreeMap::new();
    for state in states {
        for (key, id) in state {
            let ids = candidates.entry(key.clone()).or_default();
            if !ids.contains(id) {
                ids.push(id.clone());
            }
        }
    }
    let mut unconflicted = StateMap::new();
    let mut conflicted = BTreeMap::new();
    for (key, ids) in candidates {
        if let [only] = ids.as_slice() {
            unconflicted.insert(key, only.clone());
            continue;
        }
        let mut events: Vec<Pdu> = ids.iter().filter_map(|id| fetch(id)).collect();
        events.sort_by_cached_key(|pdu| (std::cmp::Reverse(pdu.depth), sha1(&pdu.event_id)));
        match events.len() {
            0 => {}
            1 => {
                unconflicted.insert(key, events.remove(0).event_id);
            }
            _ => {
                conflicted.insert(key, events);
            }
        }
    }
    (unconflicted, conflicted)
}

fn sha1(id: &EventId) -> Vec<u8> {
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, id.as_bytes());
    digest.as_ref().to_vec()
}

/// For an auth key: from the least depth up, each event in turn while it
/// is allowed in the state with the previous one applied; the last that is.
fn first_run_allowed(
    rules: &AuthorizationRules,
    events: &[Pdu],
    key: &StateKey,
    lookup: impl Fn(&StateEventType, &str) -> Option<OwnedEventId>,
    fetch: &impl Fn(&EventId) -> Option<Pdu>,
) -> Option<OwnedEventId> {
    let mut events = events.iter().rev();
    let mut applied = events.next()?;
    for event in events {
        let allowed = check_state_dependent_auth_rules(rules, event, |kind, state_key| {
            if *kind == key.0 && state_key == key.1 {
                Some(applied.clone())
            } else {
                lookup(kind, state_key).and_then(|id| fetch(&id))
            }
        });
        if allowed.is_err() {
            break;
        }
        applied = event;
    }
    Some(applied.event_id.clone())
}

/// For any other key: the first event allowed in the state, from the
/// greatest depth down, or the last if none is.
fn first_allowed(
    rules: &AuthorizationRules,
    events: &[Pdu],
    lookup: impl Fn(&StateEventType, &str) -> Option<OwnedEventId>,
    fetch: &impl Fn(&EventId) -> Option<Pdu>,
) -> Option<OwnedEventId> {
    events
        .iter()
        .find(|event| {
            check_state_dependent_auth_rules(rules, *event, |kind, key| {
                lookup(kind, key).and_then(|id| fetch(&id))
            })
            .is_ok()
        })
        .or(events.last())
        .map(|event| event.event_id.clone())
}

/// Every event reachable from `start` through `auth_events`, not
/// counting the start events themselves unless reached again.
pub fn auth_chain(
    start: impl IntoIterator<Item = OwnedEventId>,
    auth_of: &impl Fn(&EventId) -> Option<Vec<OwnedEventId>>,
) -> HashSet<OwnedEventId> {
    let mut chain = HashSet::new();
    let mut todo: Vec<OwnedEventId> = start
        .into_iter()
        .filter_map(|id| auth_of(&id))
        .flatten()
        .collect();
    while let Some(id) = todo.pop() {
        if !chain.contains(&id) {
            if let Some(auth) = auth_of(&id) {
                todo.extend(auth);
            }
            chain.insert(id);
        }
    }
    chain
}

/// The union of all `auth_events` paths between two events of the
/// conflicted state set: an event is in it when it is an auth ancestor of
/// a conflicted event and itself has a conflicted event among its auth
/// ancestors (or is conflicted).
fn conflicted_subgraph(
    conflicted: &StateMap<Vec<OwnedEventId>>,
    auth_of: &impl Fn(&EventId) -> Option<Vec<OwnedEventId>>,
) -> EventIdSet<OwnedEventId> {
    let conflicted: HashSet<OwnedEventId> = conflicted.values().flatten().cloned().collect();
    let mut subgraph: HashSet<OwnedEventId> = conflicted.clone();
    let mut leads_to_conflict = std::collections::HashMap::new();
    for start in &conflicted {
        for ancestor in auth_chain([start.clone()], auth_of) {
            if reaches_conflicted(&ancestor, &conflicted, auth_of, &mut leads_to_conflict) {
                subgraph.insert(ancestor);
            }
        }
    }
    subgraph.into_iter().collect()
}

/// Whether `id` has a conflicted event among its auth ancestors, memoized.
/// Each miss walks that event's auth chain: fine for the small conflicted
/// sets of real forks.
fn reaches_conflicted(
    id: &OwnedEventId,
    conflicted: &HashSet<OwnedEventId>,
    auth_of: &impl Fn(&EventId) -> Option<Vec<OwnedEventId>>,
    memo: &mut std::collections::HashMap<OwnedEventId, bool>,
) -> bool {
    if let Some(known) = memo.get(id) {
        return *known;
    }
    let answer = auth_chain([id.clone()], auth_of)
        .iter()
        .any(|a| conflicted.contains(a));
    memo.insert(id.clone(), answer);
    answer
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn id(name: &str) -> OwnedEventId {
        OwnedEventId::try_from(format!("${name}")).expect("id")
    }

    /// The auth difference taken the long way: the full chain of each
    /// state, their union minus their intersection.
    fn naive_difference(
        states: &[StateMap<OwnedEventId>],
        auth_of: &impl Fn(&EventId) -> Option<Vec<OwnedEventId>>,
    ) -> HashSet<OwnedEventId> {
        let chains: Vec<HashSet<OwnedEventId>> = states
            .iter()
            .map(|s| auth_chain(s.values().cloned(), auth_of))
            .collect();
        let union: HashSet<_> = chains.iter().flatten().cloned().collect();
        union
            .into_iter()
            .filter(|e| !chains.iter().all(|c| c.contains(e)))
            .collect()
    }

    #[test]
    fn a_fork_over_shared_auth_events_does_not_walk_the_whole_room() {
        // create <- alice <- pl <- (200 members); pl <- pl2. The states
        // differ only in their power levels, whose chains hold nothing
        // the members' chains do not.
        let mut edges: HashMap<OwnedEventId, Vec<OwnedEventId>> = HashMap::new();
        edges.insert(id("create"), vec![]);
        edges.insert(id("alice"), vec![id("create")]);
        edges.insert(id("pl"), vec![id("create"), id("alice")]);
        edges.insert(id("pl2"), vec![id("create"), id("alice"), id("pl")]);
        let mut shared = StateMap::new();
        for key in ["create", "alice"] {
            shared.insert((StateEventType::RoomMember, key.to_owned()), id(key));
        }
        for n in 0..200 {
            let member = id(&format!("m{n}"));
            edges.insert(member.clone(), vec![id("create"), id("pl")]);
            shared.insert((StateEventType::RoomMember, format!("m{n}")), member);
        }
        let reads = std::cell::Cell::new(0);
        let auth_of = |e: &EventId| {
            reads.set(reads.get() + 1);
            edges.get(e).cloned()
        };
        let with_pl = |pl: &str| {
            let mut state = shared.clone();
            state.insert((StateEventType::RoomPowerLevels, String::new()), id(pl));
            state
        };
        let states = [with_pl("pl2"), with_pl("pl")];
        let sets = difference_sets(&states, &auth_of);
        assert!(sets.iter().all(|s| s.is_empty()), "{sets:?}");
        assert!(reads.get() < 20, "{} auth reads", reads.get());
        assert!(naive_difference(&states, &auth_of).is_empty());
    }

    #[test]
    fn difference_sets_give_exactly_the_auth_difference() {
        // create <- pl <- (m1, m2, m3); m3 <- m3b; pl <- pl2 <- m4; shared
        // events reach some of what the differing events reach.
        let edges: HashMap<OwnedEventId, Vec<OwnedEventId>> = [
            ("create", vec![]),
            ("pl", vec!["create"]),
            ("m1", vec!["create", "pl"]),
            ("m2", vec!["create", "pl"]),
            ("m3", vec!["create", "pl"]),
            ("m3b", vec!["create", "pl", "m3"]),
            ("pl2", vec!["create", "pl", "m1"]),
            ("m4", vec!["create", "pl2"]),
            ("m5", vec!["create", "pl2", "m2"]),
        ]
        .into_iter()
        .map(|(e, auth)| (id(e), auth.into_iter().map(id).collect()))
        .collect();
        let auth_of = |e: &EventId| edges.get(e).cloned();
        let state = |entries: &[(&str, &str)]| -> StateMap<OwnedEventId> {
            entries
                .iter()
                .map(|(key, e)| ((StateEventType::RoomMember, (*key).to_owned()), id(e)))
                .collect()
        };
        let cases = [
            vec![
                state(&[("c", "create"), ("1", "m1"), ("3", "m3")]),
                state(&[("c", "create"), ("1", "m1"), ("3", "m3b")]),
            ],
            vec![
                state(&[("c", "create"), ("2", "m2"), ("4", "m4")]),
                state(&[("c", "create"), ("2", "m2"), ("4", "m5")]),
                state(&[("c", "create"), ("3", "m3b")]),
            ],
            // A key only one side holds: the shared m2 reaches pl, which
            // only that side's own chain also reaches.
            vec![
                state(&[("c", "create"), ("2", "m2"), ("3", "m3b")]),
                state(&[("c", "create"), ("2", "m2")]),
            ],
            vec![state(&[("c", "create"), ("1", "m1")])],
        ];
        for states in cases {
            let sets = difference_sets(&states, &auth_of);
            let union: HashSet<OwnedEventId> = sets.iter().flatten().cloned().collect();
            assert_eq!(union, naive_difference(&states, &auth_of), "{states:?}");
            if states.len() > 1 {
                let in_all = union.iter().filter(|e| sets.iter().all(|s| s.contains(e)));
                assert_eq!(in_all.count(), 0, "the sets must not share an event");
            }
        }
    }
}
