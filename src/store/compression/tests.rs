use super::*;
use crate::store::dump;

/// An uncompressed database, as hearth wrote before, with `records`
/// records in each of two trees.
fn uncompressed(data_dir: &Path, records: u32) {
    let db = sled::Config::new()
        .path(data_dir.join("db"))
        .open()
        .expect("open");
    for tree in ["events", "timeline"] {
        let tree = db.open_tree(tree).expect("tree");
        for n in 0..records {
            let value = format!("{{\"type\":\"m.room.message\",\"body\":\"message {n}\"}}");
            tree.insert(n.to_be_bytes(), value.as_bytes())
                .expect("insert");
        }
    }
    db.flush().expect("flush");
}

fn records(data_dir: &Path) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let mut all = Vec::new();
    dump::read_all(data_dir, |tree, key, value| {
        all.push((tree.to_owned(), key.to_vec(), value.to_vec()));
        Ok(())
    })
    .expect("read");
    all
}

#[test]
fn an_uncompressed_database_is_converted_whole_when_opened() {
    let dir = tempfile::tempdir().expect("dir");
    uncompressed(dir.path(), 25_000);
    let database = dir.path().join("db");
    assert!(written_uncompressed(&database));
    let before_bytes = dir_bytes(&database);
    let before = records(dir.path());
    // What a stopped attempt left is cleared first.
    std::fs::create_dir_all(dir.path().join(CONVERTING).join("blobs")).expect("leftover");
    let store = crate::store::reopen(dir.path());
    drop(store);
    assert!(!written_uncompressed(&database), "converted");
    assert!(
        !dir.path().join(CONVERTING).exists(),
        "the old copy is gone"
    );
    let after = records(dir.path());
    // Store::open adds its own trees; every record there before is there now.
    let after: Vec<_> = after
        .into_iter()
        .filter(|r| before.iter().any(|b| b.0 == r.0))
        .collect();
    assert_eq!(after, before);
    assert!(dir_bytes(&database) < before_bytes, "smaller");
}

#[test]
fn a_new_database_is_compressed_and_stays_so() {
    let dir = tempfile::tempdir().expect("dir");
    drop(crate::store::Store::open(dir.path()).expect("open"));
    let conf = std::fs::read(dir.path().join("db").join("conf")).expect("conf");
    let conf = String::from_utf8_lossy(&conf);
    assert!(conf.contains("use_compression: true\n"), "{conf}");
    drop(crate::store::reopen(dir.path()));
    assert!(!dir.path().join(CONVERTING).exists());
}
