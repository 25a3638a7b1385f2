use super::*;
use crate::store::{reopen as open, rooms::Append};

const ROOM: &str = "!room:example.org";

fn user(name: &str, highlight: bool) -> UserNotified {
    let actions = if highlight {
        br#"["notify",{"set_tweak":"highlight"}]"#.to_vec()
    } else {
        br#"["notify"]"#.to_vec()
    };
    UserNotified {
        user: OwnedUserId::try_from(format!("@{name}:example.org")).expect("user"),
        highlight,
        actions,
    }
}

/// Commits a record notifying `users`; its stream position.
fn notify(trees: &RoomTrees, thread: Option<&str>, users: Vec<UserNotified>, ts: u64) -> u64 {
    let notified = Notified {
        room: OwnedRoomId::try_from(ROOM).expect("room"),
        stream: 0,
        ts,
        thread: thread.map(|t| OwnedEventId::try_from(t).expect("root")),
        users,
    };
    trees
        .commit(Append {
            timeline: Some(1),
            notified: Some(notified),
            ..Append::default()
        })
        .expect("commit");
    *trees.position.borrow()
}

fn listed(trees: &RoomTrees, user: &str) -> Vec<(u64, bool, String)> {
    let mut found = Vec::new();
    trees
        .walk_notifications(user, None, true, |l| {
            found.push((
                l.stream,
                l.highlight,
                String::from_utf8(l.actions).expect("utf8"),
            ));
            Ok(true)
        })
        .expect("walk");
    found
}

#[test]
fn a_record_gives_each_user_their_own_part() {
    let record = Notified {
        room: OwnedRoomId::try_from(ROOM).expect("room"),
        stream: 9,
        ts: 1,
        thread: None,
        users: vec![user("a", false), user("b", true), user("c", false)],
    };
    let [(_, value), (_, located)] = record.entries();
    // Two distinct action lists, shared by whoever has them.
    assert_eq!(value.split(|b| *b == key::SEP).count(), 2 + 3 * 2);
    assert_eq!(&located[..ROOM.len()], ROOM.as_bytes());
    let b = find(&value, "@b:example.org").expect("find").expect("b");
    assert!(b.highlight && b.thread.is_empty());
    assert_eq!(
        b.actions().expect("actions"),
        br#"["notify",{"set_tweak":"highlight"}]"#
    );
    let c = find(&value, "@c:example.org").expect("find").expect("c");
    assert!(!c.highlight);
    assert_eq!(c.actions().expect("actions"), br#"["notify"]"#);
    assert!(find(&value, "@d:example.org").expect("find").is_none());
    // A user ID ending another's is not that user.
    assert!(find(&value, "b:example.org").expect("find").is_none());
}

#[tokio::test]
async fn counts_follow_receipts_threads_and_what_came_since() {
    let dir = tempfile::tempdir().expect("dir");
    let store = open(dir.path());
    let trees = &store.rooms;
    let (a, b) = ("@a:example.org", "@b:example.org");
    let first = notify(trees, None, vec![user("a", false), user("b", true)], 10);
    let second = notify(trees, None, vec![user("a", true)], 10);
    let in_thread = notify(trees, Some("$root"), vec![user("a", false)], 20);
    let unread = trees.unread(a, ROOM, 0).expect("unread");
    assert_eq!(unread.main, (2, 1));
    assert_eq!(unread.threads.values().collect::<Vec<_>>(), [&(1, 0)]);
    assert_eq!(trees.unread(b, ROOM, 0).expect("unread").main, (1, 1));
    // Counted on from the cache: a new record adds to it.
    trees.flush().await.expect("flush");
    notify(trees, None, vec![user("a", false)], 30);
    assert_eq!(trees.unread(a, ROOM, 0).expect("unread").main, (3, 1));
    // A floor (the user's join) and receipts start the count over.
    assert_eq!(trees.unread(a, ROOM, first).expect("unread").main, (2, 1));
    trees
        .mark_read(a, ROOM, Some("main"), second)
        .expect("read");
    let unread = trees.unread(a, ROOM, 0).expect("unread");
    assert_eq!((unread.main, unread.threads.len()), ((1, 0), 1));
    trees
        .mark_read(a, ROOM, Some("$root"), in_thread)
        .expect("read");
    assert!(trees.unread(a, ROOM, 0).expect("unread").threads.is_empty());
    trees.mark_read(a, ROOM, None, u64::MAX).expect("read");
    assert_eq!(trees.unread(a, ROOM, 0).expect("unread"), Unread::default());

    // The list: each user's own, newest first, staged or written.
    let mine = listed(trees, a);
    assert_eq!(mine.len(), 4);
    assert!(mine[0].0 > mine[3].0 && mine[2].1 && !mine[3].1);
    assert_eq!(listed(trees, b).len(), 1);
    // Pruning drops what was written before the cutoff, and only that.
    trees.flush().await.expect("flush");
    assert_eq!(trees.prune_notifications(20).expect("prune"), 2);
    assert_eq!(listed(trees, a).len(), 2);
    assert!(listed(trees, b).is_empty());
}

#[test]
fn the_first_layouts_entries_are_dropped_on_open() {
    let dir = tempfile::tempdir().expect("dir");
    {
        let store = open(dir.path());
        let tree = &store.rooms.notifications;
        for family in [&b"u"[..], b"n", b"r"] {
            let key = key::join(&[family, b"@a:example.org", b"x"]);
            tree.insert(key, &b"1"[..]).expect("insert");
        }
        tree.flush().expect("flush");
    }
    let store = open(dir.path());
    let left: Vec<_> = store
        .rooms
        .notifications
        .iter()
        .map(|e| e.expect("entry").0[0])
        .collect();
    // Read positions stay; the per-user entries are gone.
    assert_eq!(left, [b'r']);
}
