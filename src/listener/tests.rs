use super::forwarded_for;

#[test]
fn forwarded_for_takes_the_last_hop() {
    let mut headers = http::HeaderMap::new();
    headers.insert("x-forwarded-for", "10.0.0.9, 203.0.113.7".parse().unwrap());
    assert_eq!(
        forwarded_for(&headers),
        Some("203.0.113.7".parse().unwrap())
    );
    headers.insert("x-forwarded-for", "not an address".parse().unwrap());
    assert_eq!(forwarded_for(&headers), None);
}
