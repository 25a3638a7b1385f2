use super::*;

#[test]
fn names_give_the_utc_time_and_sort_by_it() {
    // 2026-12-05 07:33:12.345 UTC
    assert_eq!(name_for(1_796_455_992_345), "hearth-20261205-073312.345");
    assert_eq!(name_for(0), "hearth-19700101-000000.000");
    // The last day of a leap February.
    assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    assert!(name_for(1_796_455_992_345) < name_for(1_796_455_993_000));
}

#[test]
fn rotation_keeps_the_newest_of_ours_only() {
    let dir = tempfile::tempdir().expect("dir");
    for name in ["hearth-1", "hearth-2", "hearth-3", "hearth-4"] {
        std::fs::create_dir(dir.path().join(name)).expect("dir");
        std::fs::write(dir.path().join(name).join(MARKER), "{}").expect("marker");
    }
    // Not a finished backup of ours: kept.
    std::fs::create_dir(dir.path().join("hearth-0-unfinished")).expect("dir");
    std::fs::create_dir(dir.path().join("photos")).expect("dir");
    rotate(dir.path(), 2).expect("rotated");
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["hearth-0-unfinished", "hearth-3", "hearth-4", "photos"]
    );
}
