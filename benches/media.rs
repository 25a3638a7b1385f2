//! The content repository with a release build: a 50 MB upload and its
//! download (throughput, and the server's peak resident memory: the
//! bytes are streamed, never held), then thumbnails of a 4,000x3,000
//! JPEG (the first request decodes it; latency and peak memory).
//!
//! Run: `cargo bench --bench media` (HEARTH_BENCH_MB sets the file size).

#[path = "../tests/common/mod.rs"]
mod common;

use std::{io::Cursor, time::Instant};

use common::{client::Client, http, proc, Hearth, TestCa};

/// Bytes that do not compress: xorshift output.
fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// A 4,000x3,000 photo-like JPEG (smooth gradients with noise).
fn photo() -> Vec<u8> {
    let grain = noise(4000 * 3000);
    let picture = image::RgbImage::from_fn(4000, 3000, |x, y| {
        let g = grain[(y * 4000 + x) as usize] / 8;
        image::Rgb([(x / 16) as u8 ^ g, (y / 12) as u8 ^ g, ((x + y) / 28) as u8])
    });
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(picture)
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("jpeg");
    out.into_inner()
}

async fn upload(alice: &Client<'_>, content_type: &str, body: Vec<u8>) -> String {
    let auth = format!("Bearer {}", alice.token);
    let (status, reply) = http::request(
        http::Target::Plain(alice.h.client),
        "POST",
        "/_matrix/media/v3/upload",
        &[
            ("authorization", auth.as_str()),
            ("content-type", content_type),
        ],
        Some(body),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let uri = reply["content_uri"].as_str().expect("uri");
    uri.strip_prefix("mxc://").expect("mxc").to_owned()
}

async fn get(alice: &Client<'_>, path: &str) -> bytes::Bytes {
    let auth = format!("Bearer {}", alice.token);
    let (status, _, body) = http::request_full(
        http::Target::Plain(alice.h.client),
        "GET",
        path,
        &[("authorization", auth.as_str())],
        None,
    )
    .await;
    assert_eq!(status, 200, "{path}");
    body
}

fn mb_per_s(bytes: usize, seconds: f64) -> f64 {
    bytes as f64 / 1e6 / seconds
}

fn main() {
    let megabytes: usize = std::env::var("HEARTH_BENCH_MB")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(50);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let ca = TestCa::new();
        let limit = (megabytes * 1024 * 1024 + 1).to_string();
        let h = Hearth::start_with(
            &ca,
            &[("HEARTH_LOG", "error"), ("HEARTH_MEDIA__MAX_UPLOAD_SIZE", &limit)],
        );
        let pid = h.pid().expect("pid");
        let alice = Client::login(&h, "alice").await;
        let idle = proc::rss_kb(pid);
        let file = noise(megabytes * 1024 * 1024);
        let size = file.len();
        let started = Instant::now();
        let id = upload(&alice, "application/octet-stream", file.clone()).await;
        let up = started.elapsed().as_secs_f64();
        let after_upload = proc::peak_rss_kb(pid);
        let started = Instant::now();
        let body = get(&alice, &format!("/_matrix/client/v1/media/download/{id}")).await;
        let down = started.elapsed().as_secs_f64();
        assert!(body.as_ref() == file.as_slice(), "the download differs");
        let after_download = proc::peak_rss_kb(pid);
        println!(
            "{megabytes} MB file: upload {:.0} MB/s ({up:.2}s), download {:.0} MB/s ({down:.2}s); \
             server resident: idle {} MB, peak after upload {} MB, after download {} MB",
            mb_per_s(size, up),
            mb_per_s(size, down),
            idle / 1024,
            after_upload / 1024,
            after_download / 1024,
        );

        let jpeg = photo();
        let jpeg_size = jpeg.len();
        let id = upload(&alice, "image/jpeg", jpeg).await;
        for query in ["width=800&height=600&method=scale", "width=96&height=96&method=crop"] {
            let started = Instant::now();
            let thumb = get(&alice, &format!("/_matrix/client/v1/media/thumbnail/{id}?{query}")).await;
            let first = started.elapsed();
            let started = Instant::now();
            get(&alice, &format!("/_matrix/client/v1/media/thumbnail/{id}?{query}")).await;
            let cached = started.elapsed();
            println!(
                "4000x3000 JPEG ({} KB) thumbnail {query}: first {:?} ({} KB), cached {:?}; server peak resident {} MB",
                jpeg_size / 1024,
                first,
                thumb.len() / 1024,
                cached,
                proc::peak_rss_kb(pid) / 1024,
            );
        }
    });
}
