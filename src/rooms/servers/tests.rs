use super::*;

#[test]
fn differences_are_every_changed_added_and_removed_entry() {
    let old: ShortState = [(1, 10), (2, 20), (4, 40), (6, 60)].into();
    let new: ShortState = [(2, 21), (3, 30), (4, 40), (7, 70)].into();
    assert_eq!(
        differences(&old, &new),
        vec![
            (1, Some(10), None),
            (2, Some(20), Some(21)),
            (3, None, Some(30)),
            (6, Some(60), None),
            (7, None, Some(70)),
        ]
    );
    assert!(differences(&new, &new).is_empty());
    assert_eq!(
        differences(&ShortState::new(), &[(5, 50)].into()),
        vec![(5, None, Some(50))]
    );
}
