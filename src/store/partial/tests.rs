use super::*;

#[test]
fn a_completion_keeps_its_position_and_a_corrupt_one_is_an_error() {
    let dir = tempfile::tempdir().expect("dir");
    let store = crate::store::Store::open(dir.path()).expect("store");
    let partial = &store.partial;
    let room = <&RoomId>::try_from("!crowd:a.example.org").expect("room");
    let join = PartialJoin {
        join: "$join".try_into().expect("event id"),
        servers: vec!["a.example.org".try_into().expect("server")],
    };
    partial.put(room, &join).expect("put");
    assert!(partial.contains(room).expect("contains"));
    assert_eq!(partial.completed_at(room).expect("read"), 0);
    partial.complete(room, 42).expect("complete");
    assert_eq!(partial.completed_at(room).expect("read"), 42);
    assert!(!partial.contains(room).expect("contains"));
    partial
        .completed
        .insert(room.as_str(), &[1, 2, 3])
        .expect("insert");
    assert!(partial.completed_at(room).is_err());
}
