//! Other servers' media: `GET /_matrix/federation/v1/media/download`
//! (multipart/mixed: a JSON part, then the bytes or a `Location` to
//! fetch them from), and the deprecated `/_matrix/media/v3/download`
//! for servers that answer the first with `M_UNRECOGNIZED`.
//! Spec: server-server-api.md "Content Repository".

use bytes::Bytes;
use futures_util::{stream::BoxStream, StreamExt, TryStreamExt};
use http::{header, HeaderMap, Method, StatusCode};
use http_body_util::BodyExt;
use ruma::ServerName;

use super::{remote_error, Peers};
use crate::{
    error::{Error, Result},
    http_util::{
        media::{disposition_filename, multipart_boundary},
        percent_encode,
    },
};

/// The metadata part is `{}` today; anything bigger is refused.
const MAX_METADATA: u64 = 64 * 1024;
/// Room for the boundaries and part headers around the two parts.
const MAX_PART_HEADS: u64 = 16 * 1024;
/// How long the other server may take to find content being uploaded.
const WAIT_MS: u64 = 20_000;

/// Media as another server sends it: what it is, and its bytes as they
/// arrive (the caller bounds how many it takes, and how long).
pub struct RemoteMedia {
    pub content_type: Option<String>,
    pub filename: Option<String>,
    pub declared: Option<u64>,
    pub body: BoxStream<'static, std::result::Result<Bytes, String>>,
}

type Head = http::Response<hyper::body::Incoming>;

impl Peers {
    /// Downloads `media_id` from `server`, through the authenticated
    /// endpoint or, where the server has none, the deprecated one. The
    /// caller bounds the file to `limit` bytes as it reads it; the parts
    /// around it are bounded here.
    pub async fn media_download(
        &self,
        server: &ServerName,
        media_id: &str,
        limit: u64,
    ) -> Result<RemoteMedia> {
        let uri = format!(
            "/_matrix/federation/v1/media/download/{}?timeout_ms={WAIT_MS}",
            percent_encode(media_id)
        );
        let authorization = self.keys.authorization(server, &Method::GET, &uri, b"")?;
        let head = self.get(server, &uri, Some(authorization)).await?;
        if head.status().is_success() {
            return self.multipart_file(server, head, limit).await;
        }
        let (status, body) = small_body(head).await;
        let error = remote_error(server, status, &body);
        if error.errcode != "M_UNRECOGNIZED" {
            return Err(error);
        }
        let legacy = format!(
            "/_matrix/media/v3/download/{server}/{}?allow_remote=false&timeout_ms={WAIT_MS}",
            percent_encode(media_id)
        );
        let head = self.get(server, &legacy, None).await?;
        if !head.status().is_success() {
            let (status, body) = small_body(head).await;
            return Err(remote_error(server, status, &body));
        }
        Ok(plain(head))
    }

    async fn get(
        &self,
        server: &ServerName,
        uri: &str,
        authorization: Option<String>,
    ) -> Result<Head> {
        self.client
            .get_streaming(server, uri, authorization)
            .await
            .map_err(|e| Error::remote(e.to_string()))
    }

    /// The file part of a multipart answer, or what its `Location` serves.
    async fn multipart_file(
        &self,
        server: &ServerName,
        head: Head,
        limit: u64,
    ) -> Result<RemoteMedia> {
        let bad = |what: &str| Error::remote(format!("{server} sent media {what}"));
        let boundary = head
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|t| t.to_str().ok())
            .and_then(multipart_boundary)
            .ok_or_else(|| bad("without a multipart/mixed boundary"))?;
        let body = head.into_body().into_data_stream();
        // The parser keeps what it reads until it finds a boundary: the
        // whole answer may be the file, the metadata and some headers.
        let whole = limit.saturating_add(MAX_METADATA + MAX_PART_HEADS);
        let constraints =
            multer::Constraints::new().size_limit(multer::SizeLimit::new().whole_stream(whole));
        let mut parts = multer::Multipart::with_constraints(body, boundary, constraints);
        let mut metadata = parts
            .next_field()
            .await
            .map_err(|e| bad(&format!("with a broken first part: {e}")))?
            .ok_or_else(|| bad("without parts"))?;
        let mut metadata_bytes = 0u64;
        while let Some(chunk) = metadata.chunk().await.map_err(|e| bad(&e.to_string()))? {
            metadata_bytes += chunk.len() as u64;
            if metadata_bytes > MAX_METADATA {
                return Err(bad("with an oversized metadata part"));
            }
        }
        // A field holds the parser's state until it is dropped.
        drop(metadata);
        let file = parts
            .next_field()
            .await
            .map_err(|e| bad(&format!("with a broken second part: {e}")))?
            .ok_or_else(|| bad("without its file part"))?;
        if let Some(location) = file.headers().get(header::LOCATION) {
            let location = location
                .to_str()
                .map_err(|_| bad("with an unreadable Location"))?
                .to_owned();
            let head = self
                .client
                .get_url_streaming(&location)
                .await
                .map_err(|e| Error::remote(e.to_string()))?;
            if !head.status().is_success() {
                return Err(bad(&format!(
                    "at a Location that answered {}",
                    head.status()
                )));
            }
            return Ok(plain(head));
        }
        let (content_type, filename) = described(file.headers());
        let body = futures_util::stream::unfold(file, |mut file| async move {
            match file.chunk().await {
                Ok(Some(chunk)) => Some((Ok(chunk), file)),
                Ok(None) => None,
                Err(e) => Some((Err(e.to_string()), file)),
            }
        });
        Ok(RemoteMedia {
            content_type,
            filename,
            declared: None,
            body: body.boxed(),
        })
    }
}

/// A response whose body is the file itself.
fn plain(head: Head) -> RemoteMedia {
    let (content_type, filename) = described(head.headers());
    let declared = head
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|l| l.to_str().ok()?.parse().ok());
    let body = head
        .into_body()
        .into_data_stream()
        .map_err(|e| e.to_string());
    RemoteMedia {
        content_type,
        filename,
        declared,
        body: body.boxed(),
    }
}

fn described(headers: &HeaderMap) -> (Option<String>, Option<String>) {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &http::HeaderValue| v.to_str().ok())
    };
    (
        text(header::CONTENT_TYPE).map(str::to_owned),
        text(header::CONTENT_DISPOSITION).and_then(disposition_filename),
    )
}

/// An error answer's body, read up to 64 KiB.
async fn small_body(head: Head) -> (StatusCode, Bytes) {
    let status = head.status();
    let body = http_body_util::Limited::new(head.into_body(), 64 * 1024)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    (status, body)
}
