//! State resolution, through ruma's implementation of algorithm v2 (room
//! versions 2-11) and v2.1 (room version 12), with the inputs ruma leaves
//! to its caller: each state's full auth chain and, for v2.1, the
//! conflicted state subgraph. Spec: rooms/v2 "State resolution",
//! rooms/v12 "Conflicted state subgraph".

use std::collections::HashSet;

use ruma::{
    room_version_rules::{RoomVersionRules, StateResolutionVersion},
    state_res::{utils::event_id_set::EventIdSet, StateMap},
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
        // ruma implements only v2 and v2.1; room version 1 needs its own.
        return Err("state resolution v1 (room version 1) is not supported yet".into());
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
