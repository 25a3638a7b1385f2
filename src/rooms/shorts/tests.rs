use super::*;

fn key(i: usize) -> (StateEventType, String) {
    (StateEventType::RoomMember, format!("@u{i}:hearth.test"))
}

fn id(i: usize) -> OwnedEventId {
    OwnedEventId::try_from(format!("$e{i}:hearth.test")).expect("id")
}

#[tokio::test]
async fn state_groups_store_deltas_snapshot_long_chains_and_reload() {
    let dir = tempfile::tempdir().expect("dir");
    let store = crate::store::Store::open(dir.path()).expect("store");
    let mut shorts = Shorts::new(&store.rooms);
    let mut state = StateMap::new();
    let mut groups = Vec::new();
    let mut parent = None;
    for i in 0..40 {
        state.insert(key(i), id(i));
        let group = shorts.save(parent, &state).expect("save");
        groups.push((group, state.clone()));
        parent = Some(group);
    }
    // A delta holds one entry, until a full snapshot cuts the chain.
    let chains: Vec<(u32, usize)> = groups
        .iter()
        .map(|(g, _)| (shorts.groups[g].chain, shorts.groups[g].delta.len()))
        .collect();
    assert_eq!(chains[1], (1, 1));
    assert_eq!(chains[MAX_CHAIN as usize], (MAX_CHAIN, 1));
    assert_eq!(
        chains[MAX_CHAIN as usize + 1],
        (0, MAX_CHAIN as usize + 2),
        "a full snapshot"
    );
    // Saving an unchanged state reuses the group; removing a key records a tombstone.
    let last = parent.expect("group");
    assert_eq!(shorts.save(Some(last), &state).expect("save"), last);
    state.remove(&key(3));
    let removed = shorts.save(Some(last), &state).expect("save");
    assert_eq!(shorts.groups[&removed].delta.len(), 1);
    assert_eq!(shorts.groups[&removed].delta[0].1, 0);
    groups.push((removed, state.clone()));
    for (group, expected) in &groups {
        assert_eq!(&shorts.state_of(*group).expect("load"), expected);
    }
    let mut append = Append::default();
    shorts.into_append(&mut append);
    store.rooms.commit(append).expect("commit");
    store.rooms.flush().await.expect("flush");
    drop(store);
    let store = crate::store::reopen(dir.path());
    let reloaded = Shorts::new(&store.rooms);
    for (group, expected) in &groups {
        assert_eq!(
            &reloaded.state_of(*group).expect("load"),
            expected,
            "group {group} after reopening"
        );
    }
}
