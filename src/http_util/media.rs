//! Serving media files: the headers that keep a hostile upload from
//! running as a page (the spec's "Serving inline content"), streaming
//! from disk, and the multipart/mixed form federation downloads take.
//! Spec: client-server-api "Content repository"; server-server-api.md
//! "Content Repository".

use std::path::PathBuf;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{header, HeaderValue};
use warp::{reply::Response, Reply};

/// The content types served `inline` (the spec's list); every other is
/// served as an `attachment`, so a browser never renders it as a page.
const INLINE: &[&str] = &[
    "text/css",
    "text/plain",
    "text/csv",
    "application/json",
    "application/ld+json",
    "image/jpeg",
    "image/gif",
    "image/png",
    "image/apng",
    "image/webp",
    "image/avif",
    "video/mp4",
    "video/webm",
    "video/ogg",
    "video/quicktime",
    "audio/mp4",
    "audio/webm",
    "audio/aac",
    "audio/mpeg",
    "audio/ogg",
    "audio/wave",
    "audio/wav",
    "audio/x-wav",
    "audio/x-pn-wav",
    "audio/flac",
    "audio/x-flac",
];

/// The spec's recommended policy: nothing in a served file may run.
const CSP: &str = "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; \
                   style-src 'unsafe-inline'; object-src 'self';";

/// Read from disk this much at a time while serving.
const CHUNK: usize = 64 * 1024;

/// A file to serve: where it is and what it is.
pub struct MediaFile<'a> {
    pub path: PathBuf,
    pub size: u64,
    pub content_type: &'a str,
    pub filename: Option<&'a str>,
}

/// `Content-Disposition` for a file of `content_type` named `filename`.
pub fn content_disposition(content_type: &str, filename: Option<&str>) -> String {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let kind = if INLINE.contains(&essence.as_str()) {
        "inline"
    } else {
        "attachment"
    };
    match filename {
        None => kind.to_owned(),
        // RFC 6266: a plain ASCII name as it is, any other percent-encoded
        // as UTF-8 in `filename*`.
        Some(name)
            if name
                .bytes()
                .all(|b| (0x20..0x7f).contains(&b) && !b"\"\\;".contains(&b)) =>
        {
            format!("{kind}; filename=\"{name}\"")
        }
        Some(name) => format!("{kind}; filename*=utf-8''{}", super::percent_encode(name)),
    }
}

/// The file name a `Content-Disposition` gives (`filename*` first).
pub fn disposition_filename(value: &str) -> Option<String> {
    let params = value.split(';').skip(1).map(str::trim);
    let mut plain = None;
    for param in params {
        let Some((name, text)) = param.split_once('=') else {
            continue;
        };
        match name.trim().to_ascii_lowercase().as_str() {
            "filename*" => {
                let (charset, rest) = text.split_once('\'')?;
                let (_, encoded) = rest.split_once('\'')?;
                if charset.eq_ignore_ascii_case("utf-8") {
                    return Some(super::percent_decode(encoded));
                }
            }
            "filename" => plain = Some(text.trim().trim_matches('"').to_owned()),
            _ => {}
        }
    }
    plain.filter(|name| !name.is_empty())
}

/// The `boundary` of a `multipart/mixed` content type.
pub fn multipart_boundary(content_type: &str) -> Option<String> {
    let mut parts = content_type.split(';');
    let essence = parts.next()?.trim();
    if !essence.eq_ignore_ascii_case("multipart/mixed") {
        return None;
    }
    parts.find_map(|param| {
        let (name, value) = param.split_once('=')?;
        (name.trim().eq_ignore_ascii_case("boundary"))
            .then(|| value.trim().trim_matches('"').to_owned())
            .filter(|b| !b.is_empty() && b.len() <= 70)
    })
}

/// A file as a client download: its bytes streamed from disk.
pub fn file_response(file: &MediaFile) -> Response {
    let mut response = warp::reply::stream(read_file(file.path.clone(), file.size)).into_response();
    let headers = response.headers_mut();
    put(headers, header::CONTENT_TYPE, file.content_type);
    put(
        headers,
        header::CONTENT_DISPOSITION,
        &content_disposition(file.content_type, file.filename),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(file.size));
    protect(headers);
    response
}

/// A file as a federation download: multipart/mixed, an empty JSON
/// metadata part, then the file's part.
pub fn multipart_response(file: &MediaFile) -> Response {
    let boundary = format!("{:032x}", rand::random::<u128>());
    let head = format!(
        "--{boundary}\r\nContent-Type: application/json\r\n\r\n{{}}\r\n\
         --{boundary}\r\nContent-Type: {}\r\nContent-Disposition: {}\r\n\r\n",
        file.content_type,
        content_disposition(file.content_type, file.filename),
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let length = head.len() as u64 + file.size + tail.len() as u64;
    let parts = futures_util::stream::iter([Ok(Bytes::from(head))])
        .chain(read_file(file.path.clone(), file.size))
        .chain(futures_util::stream::iter([Ok(Bytes::from(tail))]));
    let mut response = warp::reply::stream(parts).into_response();
    let headers = response.headers_mut();
    put(
        headers,
        header::CONTENT_TYPE,
        &format!("multipart/mixed; boundary={boundary}"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    response
}

/// The headers every media answer carries: nothing in it runs, nothing
/// guesses its type, and web clients on other origins may read it.
fn protect(headers: &mut http::HeaderMap) {
    put(headers, header::CONTENT_SECURITY_POLICY, CSP);
    put(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    put(
        headers,
        http::HeaderName::from_static("cross-origin-resource-policy"),
        "cross-origin",
    );
    // Media never changes once stored.
    put(
        headers,
        header::CACHE_CONTROL,
        "private, max-age=31536000, immutable",
    );
}

fn put(headers: &mut http::HeaderMap, name: http::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// `size` bytes of the file at `path`, a chunk at a time; an error if
/// the file is shorter (it would otherwise be a truncated answer).
fn read_file(
    path: PathBuf,
    size: u64,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + Sync + 'static {
    enum State {
        Closed(PathBuf),
        Open(tokio::fs::File),
        Done,
    }
    futures_util::stream::unfold((State::Closed(path), size), |(state, left)| async move {
        use tokio::io::AsyncReadExt;
        let mut file = match state {
            State::Done => return None,
            State::Closed(path) => match tokio::fs::File::open(&path).await {
                Ok(file) => file,
                Err(e) => return Some((Err(e), (State::Done, 0))),
            },
            State::Open(file) => file,
        };
        if left == 0 {
            return None;
        }
        let mut buffer = vec![0; CHUNK.min(left as usize)];
        match file.read(&mut buffer).await {
            Ok(0) => Some((
                Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "media file shorter than its record",
                )),
                (State::Done, 0),
            )),
            Ok(n) => {
                buffer.truncate(n);
                Some((
                    Ok(Bytes::from(buffer)),
                    (State::Open(file), left - n as u64),
                ))
            }
            Err(e) => Some((Err(e), (State::Done, 0))),
        }
    })
}

#[cfg(test)]
mod tests;
