//! State resolution: through ruma's implementation of algorithm v2 (room
//! versions 2-11) and v2.1 (room version 12), with the inputs ruma leaves
//! to its caller (each state's full auth chain and, for v2.1, the
//! conflicted state subgraph), and algorithm v1 (room version 1), which
//! ruma does not implement, written here. Spec: rooms/v1 and rooms/v2
//! "State resolution", rooms/v12 "Conflicted state subgraph".

use std::collections::{BTreeMap, HashMap, HashSet};

use ruma::{
    events::StateEventType,
    room_version_rules::{AuthorizationRules, RoomVersionRules, StateResolutionVersion},
    state_res::{check_state_dependent_auth_rules, utils::event_id_set::EventIdSet, StateMap},
    EventId, OwnedEventId,
};

use super::event::Pdu;

/// What resolution reads of a room's auth DAG, both ways.
pub trait AuthGraph {
    /// An event's `auth_events`; `None` for an event we do not hold.
    fn auth_events(&self, id: &EventId) -> Option<Vec<OwnedEventId>>;
    /// Calls `visit` with each state event citing `id` among its
    /// `auth_events` until it returns true; whether it did.
    fn find_citing(&self, id: &EventId, visit: &mut dyn FnMut(&EventId) -> bool) -> bool;
}

/// Resolves forked states into one. `fetch` returns any event of the room
/// we hold; events it cannot find are left out, as the spec asks. The
/// auth DAG is read by fetching events: for callers without an index.
pub fn resolve(
    rules: &RoomVersionRules,
    states: &[StateMap<OwnedEventId>],
    fetch: impl Fn(&EventId) -> Option<Pdu>,
) -> Result<StateMap<OwnedEventId>, String> {
    let walked = Walked::new(states, |id| fetch(id).map(|pdu| pdu.auth_events));
    resolve_with(rules, states, &fetch, &walked)
}

/// [`resolve`] reading the auth DAG from `graph` (an index) rather than
/// by fetching events: auth chains hold most of a room's state.
pub fn resolve_with(
    rules: &RoomVersionRules,
    states: &[StateMap<OwnedEventId>],
    fetch: &impl Fn(&EventId) -> Option<Pdu>,
    graph: &impl AuthGraph,
) -> Result<StateMap<OwnedEventId>, String> {
    let StateResolutionVersion::V2(v2_rules) = &rules.state_res else {
        return Ok(resolve_v1(&rules.authorization, states, fetch));
    };
    let auth_of = |id: &EventId| graph.auth_events(id);
    ruma::state_res::resolve(
        &rules.authorization,
        v2_rules,
        states,
        difference_sets(states, graph),
        fetch,
        |conflicted| Some(conflicted_subgraph(conflicted, &auth_of)),
    )
    .map_err(|e| format!("state resolution failed: {e}"))
}

/// The auth DAG below some states, walked from them whole, both ways.
struct Walked {
    auth: HashMap<OwnedEventId, Vec<OwnedEventId>>,
    cited: HashMap<OwnedEventId, Vec<OwnedEventId>>,
}

impl Walked {
    pub(in crate::rooms) fn new(
        states: &[StateMap<OwnedEventId>],
        auth_of: impl Fn(&EventId) -> Option<Vec<OwnedEventId>>,
    ) -> Self {
        let mut auth = HashMap::new();
        let mut todo: Vec<OwnedEventId> = states.iter().flat_map(|s| s.values().cloned()).collect();
        while let Some(id) = todo.pop() {
            if auth.contains_key(&id) {
                continue;
            }
            if let Some(events) = auth_of(&id) {
                todo.extend(events.iter().cloned());
                auth.insert(id, events);
            }
        }
        let mut cited: HashMap<OwnedEventId, Vec<OwnedEventId>> = HashMap::new();
        for (child, events) in &auth {
            for event in events {
                cited.entry(event.clone()).or_default().push(child.clone());
            }
        }
        Self { auth, cited }
    }
}

impl AuthGraph for Walked {
    fn auth_events(&self, id: &EventId) -> Option<Vec<OwnedEventId>> {
        self.auth.get(id).cloned()
    }

    fn find_citing(&self, id: &EventId, visit: &mut dyn FnMut(&EventId) -> bool) -> bool {
        self.cited
            .get(id)
            .is_some_and(|citing| citing.iter().any(|c| visit(c)))
    }
}

/// What ruma needs of each state's full auth chain: it only takes their
/// union minus their intersection (the auth difference). The events every
/// state holds, most of a large room, add one chain C to all of them, and
/// each state's own events give a chain X_i. The difference is then
/// ⋃X − ∩X − C; each set given is X_i − ∩X − C, whose union is that
/// difference and whose intersection is empty. Whether a candidate of
/// ⋃X − ∩X is in C is asked upwards (see [`in_chain_of`]), so C, which
/// is as large as the room, is never walked.
fn difference_sets(
    states: &[StateMap<OwnedEventId>],
    graph: &impl AuthGraph,
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
    let auth_of = |id: &EventId| graph.auth_events(id);
    let own_chains: Vec<HashSet<OwnedEventId>> = held
        .iter()
        .map(|held| {
            let own = held.iter().filter(|id| !common.contains(*id));
            auth_chain(own.map(|id| (*id).clone()), &auth_of)
        })
        .collect();
    let in_every_own = |id: &OwnedEventId| own_chains.iter().all(|c| c.contains(id));
    let candidates: HashSet<&OwnedEventId> = own_chains
        .iter()
        .flatten()
        .filter(|id| !in_every_own(id))
        .collect();
    let shared = in_chain_of(&candidates, &common, graph);
    own_chains
        .iter()
        .map(|chain| {
            chain
                .iter()
                .filter(|id| candidates.contains(id) && !shared.contains(&***id))
                .cloned()
                .collect()
        })
        .collect()
}

/// Which of `wanted` are in the auth chain of `common`: those from which
/// the events citing them, and the events citing those, lead to an event
/// of `common`. Each walk up stops at the first such event (or one of
/// `wanted` already found); the events of a walk that found none lead
/// nowhere, and later walks skip them.
fn in_chain_of<'a>(
    wanted: &HashSet<&'a OwnedEventId>,
    common: &HashSet<&OwnedEventId>,
    graph: &impl AuthGraph,
) -> HashSet<&'a EventId> {
    let mut found: HashSet<&'a EventId> = HashSet::new();
    if common.is_empty() {
        return found;
    }
    // Looked up by the borrowed IDs the graph hands out.
    let common: HashSet<&EventId> = common.iter().map(|id| &***id).collect();
    let mut nowhere: HashSet<OwnedEventId> = HashSet::new();
    for &start in wanted {
        let mut seen = HashSet::new();
        let mut todo = vec![start.clone()];
        let mut reached = false;
        while let Some(id) = todo.pop() {
            reached = graph.find_citing(&id, &mut |child| {
                if common.contains(child) || found.contains(child) {
                    return true;
                }
                if !nowhere.contains(child) && !seen.contains(child) {
                    seen.insert(child.to_owned());
                    todo.push(child.to_owned());
                }
                false
            });
            if reached {
                break;
            }
        }
        if reached {
            found.insert(start);
        } else {
            nowhere.extend(seen);
            nowhere.insert(start.clone());
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
/// ancestors (or is conflicted). Each ancestor is judged once, from its
/// auth events' answers (every auth event of an ancestor is one too).
fn conflicted_subgraph(
    conflicted: &StateMap<Vec<OwnedEventId>>,
    auth_of: &impl Fn(&EventId) -> Option<Vec<OwnedEventId>>,
) -> EventIdSet<OwnedEventId> {
    let conflicted: HashSet<OwnedEventId> = conflicted.values().flatten().cloned().collect();
    let mut leads_to_conflict: HashMap<OwnedEventId, bool> = HashMap::new();
    let mut subgraph: HashSet<OwnedEventId> = conflicted.clone();
    for ancestor in auth_chain(conflicted.iter().cloned(), auth_of) {
        if leads_to_conflict_from(&ancestor, &conflicted, auth_of, &mut leads_to_conflict) {
            subgraph.insert(ancestor);
        }
    }
    subgraph.into_iter().collect()
}

/// Whether a conflicted event is among `id`'s auth ancestors, answered
/// for every ancestor on the way (depth first, without recursion: a
/// power level history can be thousands of events deep).
fn leads_to_conflict_from(
    id: &OwnedEventId,
    conflicted: &HashSet<OwnedEventId>,
    auth_of: &impl Fn(&EventId) -> Option<Vec<OwnedEventId>>,
    memo: &mut HashMap<OwnedEventId, bool>,
) -> bool {
    let mut stack = vec![(id.clone(), auth_of(id).unwrap_or_default())];
    while let Some((event, auth)) = stack.last() {
        let unanswered = auth
            .iter()
            .find(|a| !conflicted.contains(*a) && !memo.contains_key(*a))
            .cloned();
        match unanswered {
            // Auth chains are acyclic, so a pending event is never met again.
            Some(next) if !stack.iter().any(|(e, _)| *e == next) => {
                let auth = auth_of(&next).unwrap_or_default();
                stack.push((next, auth));
            }
            _ => {
                let answer = auth
                    .iter()
                    .any(|a| conflicted.contains(a) || memo.get(a) == Some(&true));
                memo.insert(event.clone(), answer);
                stack.pop();
            }
        }
    }
    memo.get(id) == Some(&true)
}

#[cfg(test)]
mod tests;
