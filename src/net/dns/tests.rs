use super::*;

#[test]
fn authorities_split_into_host_and_port() {
    assert_eq!(
        split_authority("example.org"),
        Ok(("example.org".into(), None))
    );
    assert_eq!(
        split_authority("example.org:443"),
        Ok(("example.org".into(), Some(443)))
    );
    assert_eq!(
        split_authority("1.2.3.4:8448"),
        Ok(("1.2.3.4".into(), Some(8448)))
    );
    assert_eq!(
        split_authority("[::1]:8448"),
        Ok(("::1".into(), Some(8448)))
    );
    assert_eq!(split_authority("[::1]"), Ok(("::1".into(), None)));
    assert!(split_authority("example.org:99999").is_err());
    assert!(split_authority("[::1").is_err());
    assert!(split_authority(":80").is_err());
}
