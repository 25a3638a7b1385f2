use super::*;

/// Ids keep rising across reopenings, and a directory from before the
/// counter starts above sled's generator.
#[test]
fn ids_rise_across_reopenings_and_from_older_directories() {
    let dir = tempfile::tempdir().expect("dir");
    let older = {
        let db = sled::open(dir.path().join("db")).expect("db");
        (0..5)
            .map(|_| db.generate_id().expect("id"))
            .max()
            .expect("ids")
    };
    let mut last = older;
    for _ in 0..3 {
        let store = crate::store::reopen(dir.path());
        for _ in 0..3 {
            let id = store.rooms.new_id().expect("id");
            assert!(id > last, "{id} after {last}");
            last = id;
        }
    }
}

/// The ceiling is written before an id past it is handed out.
#[test]
fn the_stored_ceiling_covers_every_id_handed_out() {
    let dir = tempfile::tempdir().expect("dir");
    let store = crate::store::reopen(dir.path());
    let counter = Counter::open(&store.db).expect("counter");
    let ids: Vec<u64> = (0..BLOCK + 5)
        .map(|_| counter.next().expect("id"))
        .collect();
    let tree = store.db.open_tree(COUNTERS).expect("tree");
    let ceiling =
        u64_value(COUNTERS, &tree.get(IDS).expect("read").expect("ceiling")).expect("u64");
    assert!(
        ids.iter().all(|id| *id < ceiling),
        "an id at or past the stored ceiling {ceiling}"
    );
}
