use ruma::{OwnedUserId, UserId};

use super::RecentChanges;

fn user(name: &str) -> OwnedUserId {
    UserId::parse(format!("@{name}:example.org")).unwrap()
}

#[test]
fn changes_in_a_range_and_none_below_the_floor() {
    let recent = RecentChanges::from(10);
    recent.record(&user("a"), 11);
    recent.record(&user("b"), 15);
    recent.record(&user("a"), 20);
    assert_eq!(recent.between(10, 20), Some(vec![user("a"), user("b")]));
    assert_eq!(recent.between(11, 15), Some(vec![user("b")]));
    assert_eq!(recent.between(20, 30), Some(vec![]));
    // Before the floor, the log cannot say.
    assert_eq!(recent.between(5, 20), None);
}
