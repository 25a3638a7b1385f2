use super::*;

#[test]
fn parts_join_and_split_back() {
    let key = join(&[b"@u:a", b"DEV", b"txn"]);
    assert_eq!(key, b"@u:a\xffDEV\xfftxn");
    assert_eq!(split(&key), Some((&b"@u:a"[..], &b"DEV\xfftxn"[..])));
    assert_eq!(split(b"no separator"), None);
}

#[test]
fn a_prefix_selects_whole_parts_only() {
    let under = prefix(&[b"!room:a"]);
    assert!(join(&[b"!room:a", b"$e"]).starts_with(&under));
    assert!(!join(&[b"!room:ab", b"$e"]).starts_with(&under));
    assert_eq!(prefix(&[b"x"]), join(&[b"x", b""]));
}
