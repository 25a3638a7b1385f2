use super::*;

fn key(i: usize) -> (StateEventType, String) {
    (StateEventType::RoomMember, format!("@u{i}:hearth.test"))
}

fn id(i: usize) -> OwnedEventId {
    OwnedEventId::try_from(format!("$e{i}:hearth.test")).expect("id")
}

#[tokio::test]
async fn state_groups_keep_thin_layers_and_reload() {
    let dir = tempfile::tempdir().expect("dir");
    let store = crate::store::Store::open(dir.path()).expect("store");
    let mut shorts = Shorts::new(&store.rooms);
    let mut state = StateMap::new();
    let mut groups = Vec::new();
    let mut parent = None;
    const CHANGES: usize = 300;
    for i in 0..CHANGES {
        state.insert(key(i), id(i));
        let group = shorts.save(parent, &state).expect("save");
        groups.push((group, state.clone()));
        parent = Some(group);
    }
    // Each layer is under half the one beneath it, so there are at most
    // log2(N) of them, and each change rewrites few entries.
    let written: usize = shorts.groups.values().map(|g| g.delta.len()).sum();
    assert!(
        written <= CHANGES * 12,
        "{written} entries written for {CHANGES} changes"
    );
    for group in shorts.groups.values() {
        assert!(group.chain <= 9, "a chain of {}", group.chain);
        if let Some(parent) = group.parent {
            let below = &shorts.groups[&parent];
            assert!(group.delta.len() * 2 < below.delta.len());
            assert_eq!(group.chain, below.chain + 1);
        }
    }
    assert!(
        shorts
            .groups
            .values()
            .filter(|g| g.parent.is_none())
            .count()
            > 1,
        "a delta as large as half the snapshot makes a new one"
    );
    // Saving an unchanged state reuses the group; removing a key records a tombstone.
    let last = parent.expect("group");
    assert_eq!(shorts.save(Some(last), &state).expect("save"), last);
    state.remove(&key(3));
    let removed = shorts.save(Some(last), &state).expect("save");
    let group = &shorts.groups[&removed];
    assert!(
        group.parent.is_none()
            || group
                .delta
                .contains(&(shorts.key(&key(3).0, &key(3).1).expect("key"), 0)),
        "a removal on a delta is a tombstone"
    );
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
