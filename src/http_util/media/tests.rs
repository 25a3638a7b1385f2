use super::*;

#[test]
fn only_the_specs_safe_types_are_inline() {
    assert_eq!(content_disposition("image/png", None), "inline");
    assert_eq!(content_disposition("IMAGE/PNG; x=y", None), "inline");
    assert_eq!(content_disposition("text/html", None), "attachment");
    assert_eq!(content_disposition("image/svg+xml", None), "attachment");
    assert_eq!(
        content_disposition("application/pdf", Some("a b.pdf")),
        "attachment; filename=\"a b.pdf\""
    );
}

#[test]
fn file_names_round_trip_through_the_header() {
    for name in ["plain.txt", "Grüße 🌍.png", "quote\".txt", "semi;colon.bin"] {
        let header = content_disposition("text/plain", Some(name));
        assert_eq!(
            disposition_filename(&header).as_deref(),
            Some(name),
            "{header}"
        );
    }
    assert_eq!(
        disposition_filename("attachment; filename=\"a.txt\"; filename*=utf-8''%C3%A9.txt")
            .as_deref(),
        Some("é.txt")
    );
    assert_eq!(disposition_filename("inline"), None);
}

#[test]
fn boundaries_come_from_multipart_mixed_only() {
    assert_eq!(
        multipart_boundary("multipart/mixed; boundary=\"abc\"").as_deref(),
        Some("abc")
    );
    assert_eq!(
        multipart_boundary("Multipart/Mixed;boundary=x1").as_deref(),
        Some("x1")
    );
    assert_eq!(multipart_boundary("multipart/form-data; boundary=x"), None);
    assert_eq!(multipart_boundary("multipart/mixed"), None);
}
