//! The content repository over real processes: uploads and downloads
//! byte for byte with the headers that keep a hostile file from running,
//! the upload limit to the byte, thumbnails, `/create` and its waiting
//! downloads, media after `kill -9`, and media fetched from another
//! hearth over federation.

mod common;

use std::io::Cursor;

use bytes::Bytes;
use common::{client::Client, http, Hearth, TestCa};
use serde_json::Value;

const LIMIT: &str = "100000";

/// A `width`x`height` PNG with a gradient (so it does not compress away).
fn png(width: u32, height: u32) -> Vec<u8> {
    let picture = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 251) as u8, (y % 241) as u8, ((x * y) % 239) as u8])
    });
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(picture)
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("png");
    out.into_inner()
}

fn dimensions(bytes: &[u8]) -> (u32, u32) {
    let picture = image::load_from_memory(bytes).expect("an image");
    (picture.width(), picture.height())
}

/// Uploads `body` as `content_type`; the status and answer.
async fn upload(
    client: &Client<'_>,
    content_type: &str,
    query: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let auth = format!("Bearer {}", client.token);
    http::request(
        http::Target::Plain(client.h.client),
        "POST",
        &format!("/_matrix/media/v3/upload{query}"),
        &[
            ("authorization", auth.as_str()),
            ("content-type", content_type),
        ],
        Some(body),
    )
    .await
}

/// The `mxc://` URI of a successful upload, as `server/mediaId`.
async fn uploaded(client: &Client<'_>, content_type: &str, query: &str, body: Vec<u8>) -> String {
    let (status, reply) = upload(client, content_type, query, body).await;
    assert_eq!(status, 200, "{reply}");
    let uri = reply["content_uri"].as_str().expect("content_uri");
    uri.strip_prefix("mxc://").expect("an mxc URI").to_owned()
}

/// A GET on the client listener, with `client`'s token when given.
async fn get(
    h: &Hearth,
    client: Option<&Client<'_>>,
    path: &str,
) -> (u16, ::http::HeaderMap, Bytes) {
    let auth = client.map(|c| format!("Bearer {}", c.token));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    http::request_full(http::Target::Plain(h.client), "GET", path, &headers, None).await
}

fn header<'a>(headers: &'a ::http::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn errcode(bytes: &[u8]) -> String {
    let reply: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    reply["errcode"].as_str().unwrap_or("").to_owned()
}

#[tokio::test]
async fn uploads_come_back_byte_for_byte_and_only_safe_types_inline() {
    let ca = TestCa::new();
    let h = Hearth::start(&ca);
    let alice = Client::login(&h, "alice").await;
    let picture = png(1000, 500);
    let name = "Gr%C3%BC%C3%9Fe%20%F0%9F%8C%8D.png";
    let png_id = uploaded(
        &alice,
        "image/png",
        &format!("?filename={name}"),
        picture.clone(),
    )
    .await;
    assert!(
        png_id.starts_with(&format!("{}/", h.server_name)),
        "{png_id}"
    );

    let (status, headers, body) = get(
        &h,
        Some(&alice),
        &format!("/_matrix/client/v1/media/download/{png_id}"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body.as_ref(), picture.as_slice(), "the bytes differ");
    assert_eq!(header(&headers, "content-type"), "image/png");
    assert_eq!(
        header(&headers, "content-disposition"),
        format!("inline; filename*=utf-8''{name}")
    );
    assert!(header(&headers, "content-security-policy").starts_with("sandbox; default-src 'none'"));
    assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
    assert_eq!(
        header(&headers, "cross-origin-resource-policy"),
        "cross-origin"
    );

    // A page uploaded by someone is only ever an attachment.
    let page = b"<script>alert(1)</script>".to_vec();
    let html_id = uploaded(&alice, "text/html", "?filename=x.html", page.clone()).await;
    let (status, headers, body) = get(
        &h,
        Some(&alice),
        &format!("/_matrix/client/v1/media/download/{html_id}/renamed.html"),
    )
    .await;
    assert_eq!((status, body.as_ref()), (200, page.as_slice()));
    assert_eq!(
        header(&headers, "content-disposition"),
        "attachment; filename=\"renamed.html\""
    );

    // Authenticated media needs a token; the deprecated path does not.
    let (status, _, body) = get(
        &h,
        None,
        &format!("/_matrix/client/v1/media/download/{png_id}"),
    )
    .await;
    assert_eq!((status, errcode(&body).as_str()), (401, "M_MISSING_TOKEN"));
    let (status, _, body) = get(&h, None, &format!("/_matrix/media/v3/download/{png_id}")).await;
    assert_eq!((status, body.as_ref()), (200, picture.as_slice()));

    let server = &h.server_name;
    let (status, _, body) = get(
        &h,
        Some(&alice),
        &format!("/_matrix/client/v1/media/download/{server}/nosuchmedia"),
    )
    .await;
    assert_eq!((status, errcode(&body).as_str()), (404, "M_NOT_FOUND"));
    let (status, _, body) = get(
        &h,
        Some(&alice),
        &format!("/_matrix/client/v1/media/download/{server}/..%2F..%2Fidentity.json"),
    )
    .await;
    assert_eq!((status, errcode(&body).as_str()), (400, "M_INVALID_PARAM"));

    // The same bytes uploaded again are stored once.
    let again = uploaded(&alice, "image/png", "", picture.clone()).await;
    assert_ne!(again, png_id);
    assert_eq!(media_files(&h), 2, "the PNG and the page");
}

/// Files kept under `data/media/` (content-addressed: one per content).
fn media_files(h: &Hearth) -> usize {
    let root = h.data_dir().join("media");
    std::fs::read_dir(&root)
        .expect("media dir")
        .filter_map(Result::ok)
        .filter(|d| d.file_name().len() == 2)
        .map(|d| std::fs::read_dir(d.path()).expect("dir").count())
        .sum()
}

#[tokio::test]
async fn the_upload_limit_holds_to_the_byte() {
    let ca = TestCa::new();
    let h = Hearth::start_with(&ca, &[("HEARTH_MEDIA__MAX_UPLOAD_SIZE", LIMIT)]);
    let alice = Client::login(&h, "alice").await;
    let (status, _, body) = get(&h, Some(&alice), "/_matrix/client/v1/media/config").await;
    let config: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(
        (status, config["m.upload.size"].as_u64()),
        (200, Some(100_000))
    );

    let limit: usize = LIMIT.parse().expect("limit");
    uploaded(&alice, "application/octet-stream", "", vec![7; limit]).await;
    let (status, reply) = upload(&alice, "application/octet-stream", "", vec![7; limit + 1]).await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (413, Some("M_TOO_LARGE")),
        "{reply}"
    );
    // A declared length over the limit is refused before the body.
    let auth = format!("Bearer {}", alice.token);
    let (status, reply) = http::declare_body(
        http::Target::Plain(h.client),
        "POST",
        "/_matrix/media/v3/upload",
        &[("authorization", auth.as_str())],
        10 * 1024 * 1024,
    )
    .await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (413, Some("M_TOO_LARGE"))
    );
    let tmp = std::fs::read_dir(h.data_dir().join("media/tmp"))
        .expect("tmp")
        .count();
    assert_eq!(tmp, 0, "refused uploads left files");
    let (status, reply) = upload(&alice, "not a type", "", vec![1]).await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (400, Some("M_INVALID_PARAM"))
    );
}

#[tokio::test]
async fn thumbnails_are_the_specs_sizes_and_never_upscaled() {
    let ca = TestCa::new();
    let h = Hearth::start(&ca);
    let alice = Client::login(&h, "alice").await;
    let big = uploaded(&alice, "image/png", "", png(1000, 500)).await;
    let thumb = |id: &str, query: &str| format!("/_matrix/client/v1/media/thumbnail/{id}?{query}");
    for (query, expected) in [
        ("width=300&height=200&method=scale", (320, 160)),
        ("width=640&height=480", (640, 320)),
        ("width=64&height=64&method=crop", (96, 96)),
        ("width=2000&height=2000&method=scale", (800, 400)),
    ] {
        let (status, headers, body) = get(&h, Some(&alice), &thumb(&big, query)).await;
        assert_eq!(status, 200, "{query}: {}", String::from_utf8_lossy(&body));
        assert_eq!(header(&headers, "content-type"), "image/jpeg", "{query}");
        assert_eq!(dimensions(&body), expected, "{query}");
    }
    // Smaller than asked: the original itself.
    let small_png = png(50, 40);
    let small = uploaded(&alice, "image/png", "", small_png.clone()).await;
    let (status, _, body) = get(&h, Some(&alice), &thumb(&small, "width=320&height=240")).await;
    assert_eq!((status, body.as_ref()), (200, small_png.as_slice()));

    let text = uploaded(&alice, "text/plain", "", b"hello".to_vec()).await;
    let (status, _, _) = get(&h, Some(&alice), &thumb(&text, "width=32&height=32")).await;
    assert_eq!(status, 400);
    let (status, _, body) = get(&h, Some(&alice), &thumb(&big, "width=0&height=32")).await;
    assert_eq!((status, errcode(&body).as_str()), (400, "M_INVALID_PARAM"));

    // A small file declaring 100,000 x 100,000 pixels is refused unread.
    let mut bomb = png(1, 1);
    bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let crc = crc32(&bomb[12..29]);
    bomb[29..33].copy_from_slice(&crc.to_be_bytes());
    let bomb = uploaded(&alice, "image/png", "", bomb).await;
    let (status, _, body) = get(
        &h,
        Some(&alice),
        &thumb(&bomb, "width=32&height=32&method=crop"),
    )
    .await;
    assert_eq!((status, errcode(&body).as_str()), (413, "M_TOO_LARGE"));
    let rss = common::proc::rss_kb(h.pid().expect("pid"));
    assert!(rss < 100 * 1024, "resident {rss} KiB after the bomb");
}

/// The CRC-32 PNG chunks carry.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[tokio::test]
async fn a_created_id_is_filled_once_and_downloads_wait_for_it() {
    let ca = TestCa::new();
    let h = Hearth::start(&ca);
    let alice = Client::login(&h, "alice").await;
    let bob = Client::login(&h, "bob").await;
    let auth = format!("Bearer {}", alice.token);
    let (status, created) = http::request(
        http::Target::Plain(h.client),
        "POST",
        "/_matrix/media/v1/create",
        &[("authorization", auth.as_str())],
        Some(b"{}".to_vec()),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    assert!(created["unused_expires_at"].as_u64().is_some(), "{created}");
    let id = created["content_uri"]
        .as_str()
        .expect("uri")
        .strip_prefix("mxc://")
        .expect("mxc")
        .to_owned();

    let download = format!("/_matrix/client/v1/media/download/{id}");
    let (status, _, body) = get(&h, Some(&alice), &format!("{download}?timeout_ms=100")).await;
    assert_eq!(
        (status, errcode(&body).as_str()),
        (504, "M_NOT_YET_UPLOADED")
    );

    let put = |client: &Client<'_>, body: &'static [u8]| {
        let auth = format!("Bearer {}", client.token);
        let target = http::Target::Plain(h.client);
        let path = format!("/_matrix/media/v3/upload/{id}");
        async move {
            http::request(
                target,
                "PUT",
                &path,
                &[
                    ("authorization", auth.as_str()),
                    ("content-type", "text/plain"),
                ],
                Some(body.to_vec()),
            )
            .await
        }
    };
    let long_wait = format!("{download}?timeout_ms=20000");
    let waiting = get(&h, Some(&bob), &long_wait);
    let filling = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let (status, reply) = put(&bob, b"not bob's").await;
        assert_eq!(
            (status, reply["errcode"].as_str()),
            (403, Some("M_FORBIDDEN"))
        );
        put(&alice, b"filled later").await
    };
    let ((status, _, body), (filled, reply)) = tokio::join!(waiting, filling);
    assert_eq!(filled, 200, "{reply}");
    assert_eq!((status, body.as_ref()), (200, &b"filled later"[..]));
    let (status, reply) = put(&alice, b"again").await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (409, Some("M_CANNOT_OVERWRITE_MEDIA"))
    );
}

#[tokio::test]
async fn acknowledged_uploads_survive_kill_9() {
    let ca = TestCa::new();
    let mut h = Hearth::start(&ca);
    let alice = Client::login(&h, "alice").await;
    let picture = png(300, 200);
    let id = uploaded(&alice, "image/png", "?filename=kept.png", picture.clone()).await;
    let token = alice.token.clone();
    h.kill();
    // What a kill between a file's rename and its record would leave.
    let unnamed = h.data_dir().join("media/00").join("1".repeat(62));
    std::fs::create_dir_all(unnamed.parent().expect("dir")).expect("dir");
    std::fs::write(&unnamed, b"no record names this").expect("write");
    h.restart();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while unnamed.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the unnamed file stayed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let alice = Client {
        h: &h,
        token,
        user: String::new(),
        device: String::new(),
    };
    let (status, headers, body) = get(
        &h,
        Some(&alice),
        &format!("/_matrix/client/v1/media/download/{id}"),
    )
    .await;
    assert_eq!((status, body.as_ref()), (200, picture.as_slice()));
    assert_eq!(
        header(&headers, "content-disposition"),
        "inline; filename=\"kept.png\""
    );
}

#[tokio::test]
async fn media_of_another_hearth_is_fetched_over_federation_once() {
    let ca = TestCa::new();
    let a = Hearth::start(&ca);
    let b = Hearth::start_with(
        &ca,
        &[
            ("HEARTH_METRICS__ENABLED", "true"),
            ("HEARTH_MEDIA__MAX_REMOTE_SIZE", "3000000"),
        ],
    );
    let alice = Client::login(&a, "alice").await;
    let bob = Client::login(&b, "bob").await;
    let picture = png(900, 600);
    let id = uploaded(&alice, "image/png", "?filename=far.png", picture.clone()).await;

    // Unsigned requests to the federation endpoint are refused.
    let (status, _) = a
        .federation_request(
            &ca,
            "GET",
            &format!(
                "/_matrix/federation/v1/media/download/{}",
                id.rsplit('/').next().expect("id")
            ),
            &[],
            None,
        )
        .await;
    assert_eq!(status, 401);

    let path = format!("/_matrix/client/v1/media/download/{id}");
    let downloads: Vec<_> = (0..4).map(|_| get(&b, Some(&bob), &path)).collect();
    for (status, headers, body) in futures_util::future::join_all(downloads).await {
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert_eq!(body.as_ref(), picture.as_slice());
        assert_eq!(header(&headers, "content-type"), "image/png");
        assert_eq!(
            header(&headers, "content-disposition"),
            "inline; filename=\"far.png\""
        );
    }
    let (status, _, body) = get(
        &b,
        Some(&bob),
        &format!("/_matrix/client/v1/media/thumbnail/{id}?width=96&height=96&method=crop"),
    )
    .await;
    assert_eq!((status, dimensions(&body)), (200, (96, 96)));
    let (status, _, body) = get(
        &b,
        Some(&bob),
        &format!(
            "/_matrix/client/v1/media/download/{}/missing",
            a.server_name
        ),
    )
    .await;
    assert_eq!((status, errcode(&body).as_str()), (404, "M_NOT_FOUND"));
    // The deprecated path with allow_remote=false does not fetch.
    let other = uploaded(&alice, "text/plain", "", b"not fetched".to_vec()).await;
    let (status, _, _) = get(
        &b,
        None,
        &format!("/_matrix/media/v3/download/{other}?allow_remote=false"),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        media_files(&b),
        2,
        "one copy of the picture and its thumbnail"
    );
}

#[tokio::test]
async fn media_goes_with_a_backup_of_the_running_server() {
    let ca = TestCa::new();
    let h = Hearth::start(&ca);
    let alice = Client::login(&h, "alice").await;
    let picture = png(200, 100);
    let id = uploaded(&alice, "image/png", "", picture.clone()).await;
    let parent = tempfile::tempdir().expect("dir");
    let copy = parent.path().join("copy");
    let out = h.cli(&["backup", &copy.to_string_lossy()]);
    assert!(out.contains("checked"), "{out}");
    assert!(
        !copy.join("media/tmp").exists(),
        "temporary uploads were copied"
    );

    let federation = format!("127.0.0.1:{}", common::free_port())
        .parse()
        .expect("addr");
    let dir = copy.to_string_lossy().into_owned();
    let restored = Hearth::start_at(
        &ca,
        &h.server_name,
        federation,
        &[("HEARTH_DATA_DIR", &dir)],
    );
    let alice = Client {
        h: &restored,
        token: alice.token.clone(),
        user: String::new(),
        device: String::new(),
    };
    let (status, _, body) = get(
        &restored,
        Some(&alice),
        &format!("/_matrix/client/v1/media/download/{id}"),
    )
    .await;
    assert_eq!((status, body.as_ref()), (200, picture.as_slice()));
}

#[tokio::test]
async fn the_remote_cache_is_pruned_oldest_first_and_admins_delete_media() {
    let ca = TestCa::new();
    let mut a = Hearth::start(&ca);
    let b = Hearth::start_with(&ca, &[("HEARTH_MEDIA__REMOTE_CACHE_SIZE", "15000")]);
    let alice = Client::login(&a, "alice").await;
    let bob = Client::login(&b, "bob").await;
    let first = uploaded(&alice, "application/octet-stream", "", vec![1; 10_000]).await;
    let second = uploaded(&alice, "application/octet-stream", "", vec![2; 10_000]).await;
    for id in [&first, &second] {
        let (status, _, body) = get(
            &b,
            Some(&bob),
            &format!("/_matrix/client/v1/media/download/{id}"),
        )
        .await;
        assert_eq!((status, body.len()), (200, 10_000));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let stats = b.cli(&["media", "stats"]);
    assert!(
        stats.contains("remote (cached): 2 items, 20000 bytes"),
        "{stats}"
    );

    // Nothing is older than 30 days, but the cache holds 20,000 bytes of
    // 15,000: the least recently downloaded goes.
    let purged = b.cli(&["media", "purge-remote", "--older-than", "30d"]);
    assert!(
        purged.contains("dropped 1 cached remote item(s), 10000 bytes"),
        "{purged}"
    );
    let stats = b.cli(&["media", "stats"]);
    assert!(
        stats.contains("remote (cached): 1 items, 10000 bytes"),
        "{stats}"
    );
    assert_eq!(media_files(&b), 1, "the dropped file is still on disk");
    // Dropped from the cache is not gone: it is fetched again.
    let (status, _, body) = get(
        &b,
        Some(&bob),
        &format!("/_matrix/client/v1/media/download/{first}"),
    )
    .await;
    assert_eq!((status, body.as_ref()), (200, &[1u8; 10_000][..]));

    let deleted = a.cli(&["media", "delete", &format!("mxc://{second}")]);
    assert!(deleted.contains("deleted"), "{deleted}");
    let (status, _, _) = get(
        &a,
        Some(&alice),
        &format!("/_matrix/client/v1/media/download/{second}"),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(media_files(&a), 1);
    // On a stopped server the CLI works on the data directory itself.
    a.kill();
    let stats = a.cli(&["media", "stats"]);
    assert!(stats.contains("local: 1 items, 10000 bytes"), "{stats}");
}

#[tokio::test]
async fn a_users_quota_bounds_what_they_store() {
    let ca = TestCa::new();
    let h = Hearth::start_with(&ca, &[("HEARTH_MEDIA__USER_QUOTA", "25000")]);
    let alice = Client::login(&h, "alice").await;
    uploaded(&alice, "application/octet-stream", "", vec![1; 20_000]).await;
    let (status, reply) = upload(&alice, "application/octet-stream", "", vec![2; 10_000]).await;
    assert_eq!(
        (status, reply["errcode"].as_str()),
        (403, Some("M_FORBIDDEN")),
        "{reply}"
    );
    uploaded(&alice, "application/octet-stream", "", vec![3; 5_000]).await;
    let bob = Client::login(&h, "bob").await;
    uploaded(&bob, "application/octet-stream", "", vec![2; 10_000]).await;
}

/// A plain HTTP server on `ip` for link previews: `/page` (OpenGraph
/// tags and an image), `/pic.png`, and `/away` redirecting to `away`.
async fn web_server(ip: &str, away: String) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let picture = png(64, 48);
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let (picture, away) = (picture.clone(), away.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).await.unwrap_or(0) == 1
                {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let (status, kind, body, extra) = match path.as_str() {
                    "/page" => (
                        "200 OK",
                        "text/html; charset=utf-8",
                        br#"<html><head><title>t</title>
                        <meta property="og:title" content="Hearth &amp; home">
                        <meta property="og:description" content="A page to preview">
                        <meta property="og:image" content="/pic.png"></head></html>"#
                            .to_vec(),
                        String::new(),
                    ),
                    "/pic.png" => ("200 OK", "image/png", picture, String::new()),
                    "/away" => (
                        "302 Found",
                        "text/plain",
                        Vec::new(),
                        format!("location: {away}\r\n"),
                    ),
                    _ => ("404 Not Found", "text/plain", Vec::new(), String::new()),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\n{extra}connection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.write_all(&body).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn link_previews_read_open_graph_and_refuse_private_addresses() {
    let ca = TestCa::new();
    let elsewhere = web_server("127.0.0.2", String::new()).await;
    let site = web_server("127.0.0.1", format!("http://{elsewhere}/page")).await;
    let h = Hearth::start_with(
        &ca,
        &[
            ("HEARTH_MEDIA__URL_PREVIEWS", "true"),
            (
                "HEARTH_MEDIA__URL_PREVIEW_IP_ALLOWLIST",
                "[\"127.0.0.1/32\"]",
            ),
        ],
    );
    let alice = Client::login(&h, "alice").await;
    let preview = |url: String| {
        let path = format!(
            "/_matrix/client/v1/media/preview_url?url={}",
            common::rooms::encode(&url)
        );
        let alice = &alice;
        let h = &h;
        async move { get(h, Some(alice), &path).await }
    };
    let (status, _, body) = preview(format!("http://{site}/page")).await;
    let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["og:title"], "Hearth & home");
    assert_eq!(answer["og:description"], "A page to preview");
    let image = answer["og:image"]
        .as_str()
        .expect("og:image stored as media");
    let image = image.strip_prefix("mxc://").expect("mxc");
    let (status, _, body) = get(
        &h,
        Some(&alice),
        &format!("/_matrix/client/v1/media/download/{image}"),
    )
    .await;
    assert_eq!((status, dimensions(&body)), (200, (64, 48)));

    // 127.0.0.2 is not allowed: neither directly nor through a redirect.
    for url in [
        format!("http://{elsewhere}/page"),
        format!("http://{site}/away"),
    ] {
        let (status, _, body) = preview(url.clone()).await;
        assert_eq!(
            (status, errcode(&body).as_str()),
            (403, "M_FORBIDDEN"),
            "{url}"
        );
    }
    let (status, _, body) = preview("file:///etc/passwd".into()).await;
    assert_eq!((status, errcode(&body).as_str()), (400, "M_INVALID_PARAM"));

    // Off by default.
    let plain = Hearth::start(&ca);
    let bob = Client::login(&plain, "bob").await;
    let path = format!(
        "/_matrix/client/v1/media/preview_url?url={}",
        common::rooms::encode(&format!("http://{site}/page"))
    );
    let (status, _, body) = get(&plain, Some(&bob), &path).await;
    assert_eq!((status, errcode(&body).as_str()), (404, "M_UNRECOGNIZED"));
}
