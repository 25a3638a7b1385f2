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
    let StateResolutionVersion::V2(v2_rules) = &rules.state_res else {
        return Ok(resolve_v1(&rules.authorization, states, &fetch));
    };
    let auth_chains = states
        .iter()
        .map(|state| {
            auth_chain(state.values().cloned(), &fetch)
                .into_iter()
                .collect()
        })
        .collect();
    ruma::state_res::resolve(
        &rules.authorization,
        v2_rules,
        states,
        auth_chains,
        &fetch,
        |conflicted| Some(conflicted_subgraph(conflicted, &fetch)),
    )
    .map_err(|e| format!("state resolution failed: {e}"))
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
    fetch: &impl Fn(&EventId) -> Option<Pdu>,
) -> HashSet<OwnedEventId> {
    let mut chain = HashSet::new();
    let mut todo: Vec<OwnedEventId> = start
        .into_iter()
        .filter_map(|id| fetch(&id))
        .flat_map(|pdu| pdu.auth_events)
        .collect();
    while let Some(id) = todo.pop() {
        if chain.insert(id.clone()) {
            if let Some(pdu) = fetch(&id) {
                todo.extend(pdu.auth_events);
            }
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
    fetch: &impl Fn(&EventId) -> Option<Pdu>,
) -> EventIdSet<OwnedEventId> {
    let conflicted: HashSet<OwnedEventId> = conflicted.values().flatten().cloned().collect();
    let mut subgraph: HashSet<OwnedEventId> = conflicted.clone();
    let mut leads_to_conflict = std::collections::HashMap::new();
    for start in &conflicted {
        for ancestor in auth_chain([start.clone()], fetch) {
            if reaches_conflicted(&ancestor, &conflicted, fetch, &mut leads_to_conflict) {
                subgraph.insert(ancestor);
            }
        }
    }
    subgraph.into_iter().collect()
}

/// Whether `id` has a conflicted event among its auth ancestors, memoized.
/// Each miss walks that event's auth chain: fine for the small conflicted
/// sets of real forks; the stored auth-chain index will replace the walk.
fn reaches_conflicted(
    id: &OwnedEventId,
    conflicted: &HashSet<OwnedEventId>,
    fetch: &impl Fn(&EventId) -> Option<Pdu>,
    memo: &mut std::collections::HashMap<OwnedEventId, bool>,
) -> bool {
    if let Some(known) = memo.get(id) {
        return *known;
    }
    let answer = auth_chain([id.clone()], fetch)
        .iter()
        .any(|a| conflicted.contains(a));
    memo.insert(id.clone(), answer);
    answer
}
