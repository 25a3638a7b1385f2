use super::*;

#[test]
fn server_names_in_paths_are_percent_decoded() {
    assert_eq!(
        parse_server_name("%5B%3A%3A1%5D%3A8448")
            .expect("ipv6")
            .as_str(),
        "[::1]:8448"
    );
    assert_eq!(
        parse_server_name("example.org").expect("plain").as_str(),
        "example.org"
    );
    assert!(parse_server_name("bad%20name").is_err());
}
