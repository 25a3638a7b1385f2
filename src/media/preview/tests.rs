use super::*;

#[test]
fn open_graph_tags_are_read_whatever_the_quotes_and_order() {
    let html = r#"<html><head><title>Fallback</title>
        <META content="A &amp; B" property="og:title">
        <meta property='og:description' content='It&#39;s "quoted"' />
        <meta name="og:image" content="/img/a.png">
        <meta property="og:title" content="second title ignored">
        <meta name="description" content="not og">
        </head></html>"#;
    let tags = open_graph(html);
    assert_eq!(tags["og:title"], "A & B");
    assert_eq!(tags["og:description"], "It's \"quoted\"");
    assert_eq!(tags["og:image"], "/img/a.png");
    assert!(!tags.contains_key("description"));
}

#[test]
fn the_title_stands_in_for_a_missing_og_title() {
    let tags = open_graph("<html><head><title> Just a page </title></head></html>");
    assert_eq!(tags["og:title"], "Just a page");
    assert!(open_graph("<p>no head</p>").is_empty());
}

#[test]
fn image_urls_are_made_absolute() {
    let page = "https://example.org/blog/post.html";
    assert_eq!(absolute(page, "/a.png"), "https://example.org/a.png");
    assert_eq!(absolute(page, "b.png"), "https://example.org/blog/b.png");
    assert_eq!(
        absolute(page, "//cdn.example.org/c.png"),
        "https://cdn.example.org/c.png"
    );
    assert_eq!(
        absolute(page, "http://other.org/d.png"),
        "http://other.org/d.png"
    );
    assert_eq!(
        absolute("https://example.org", "e.png"),
        "https://example.org/e.png"
    );
}
