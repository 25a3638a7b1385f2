//! Small helpers shared by every warp route: JSON replies, the rejection
//! handler that turns anything warp refuses into a Matrix error, and body
//! parsing that names what is wrong.

pub mod cors;
pub mod media;

use std::convert::Infallible;

use http::StatusCode;
use serde::{de::DeserializeOwned, Serialize};
use warp::{reply::Response, Rejection};

use crate::error::{Error, Result};

/// Largest request body any listener accepts (a full `/send` is 50 PDUs of
/// 64 KiB plus 100 EDUs, well under this).
pub const MAX_BODY_BYTES: u64 = 8 * 1024 * 1024;

/// A JSON response (defined beside the error type, whose answers are
/// JSON too, so that `error` needs nothing from here).
pub use crate::error::json_response;

pub fn ok_json(body: &impl Serialize) -> Response {
    json_response(StatusCode::OK, body)
}

/// Turns a handler's result into a response, so handlers can use `?`.
pub fn reply(result: Result<Response>) -> Response {
    result.unwrap_or_else(Error::into_response)
}

/// Parses a JSON request body, with an error that says what was wrong.
/// It is parsed straight into `T` (a 50-PDU transaction is big); only a
/// failure is parsed again, to tell JSON of the wrong shape (`M_BAD_JSON`)
/// from no JSON at all (`M_NOT_JSON`).
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| {
        match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
            Err(not_json) => Error::not_json(format!("request body is not valid JSON: {not_json}")),
            Ok(_) => Error::bad_json(format!("request body: {e}")),
        }
    })
}

/// A JSON object written from fields whose values are JSON text already
/// (stored canonical events, a canonical body), without parsing them.
/// With `fields` in sorted key order and canonical values, the object is
/// canonical JSON: what transactions and request signatures are made of.
pub fn splice_object<'a>(fields: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Vec<u8> {
    let mut object = vec![b'{'];
    for (i, (name, value)) in fields.into_iter().enumerate() {
        if i > 0 {
            object.push(b',');
        }
        object.extend_from_slice(&json_string(name));
        object.push(b':');
        object.extend_from_slice(value);
    }
    object.push(b'}');
    object
}

/// A JSON array of JSON texts, joined unparsed.
pub fn splice_array(items: &[Vec<u8>]) -> Vec<u8> {
    let mut array = Vec::with_capacity(items.iter().map(Vec::len).sum::<usize>() + items.len() + 2);
    array.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            array.push(b',');
        }
        array.extend_from_slice(item);
    }
    array.push(b']');
    array
}

/// A string as JSON text, escaped as canonical JSON escapes it (serde_json
/// is what ruma's canonical encoding uses too).
pub fn json_string(s: &str) -> Vec<u8> {
    // Writing a str into a Vec cannot fail.
    serde_json::to_vec(s).unwrap_or_default()
}

/// Maps warp's rejections (unknown path, wrong method, body too large, …)
/// and our own errors to Matrix error responses. Spec: server-server-api.md
/// "Unsupported endpoints".
pub async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    let error = if let Some(e) = rejection.find::<Error>() {
        e.clone()
    } else if rejection.is_not_found() {
        Error::unrecognized("Unrecognized request")
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        Error::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "M_UNRECOGNIZED",
            "Method not allowed",
        )
    } else if let Some(e) = rejection.find::<warp::reject::InvalidQuery>() {
        Error::invalid_param(format!("invalid query string: {e}"))
    } else if let Some(e) = rejection.find::<warp::reject::MissingHeader>() {
        Error::missing_param(format!("{e}"))
    } else {
        Error::new(
            StatusCode::BAD_REQUEST,
            "M_UNKNOWN",
            format!("{rejection:?}"),
        )
    };
    Ok(error.into_response())
}

/// The raw query string as sent (empty when there is none): signatures
/// cover it byte for byte.
pub fn raw_query(
) -> impl warp::Filter<Extract = (String,), Error = std::convert::Infallible> + Clone {
    use warp::Filter;
    warp::query::raw().or(warp::any().map(String::new)).unify()
}

/// How request bodies are received: `budget` bytes of bodies still
/// arriving may be held across all requests (a permit per byte, given
/// back when the body is complete), and each must arrive within
/// `deadline`. A stranger trickling bodies then pins a bounded amount of
/// memory for a bounded time. The listener hands every request these.
#[derive(Clone)]
pub struct BodyLimits {
    budget: std::sync::Arc<tokio::sync::Semaphore>,
    deadline: std::time::Duration,
}

impl BodyLimits {
    pub fn new(budget_bytes: usize, deadline: std::time::Duration) -> Self {
        Self {
            budget: std::sync::Arc::new(tokio::sync::Semaphore::new(budget_bytes)),
            deadline,
        }
    }

    /// Takes `bytes` more of the budget, or says the server is full.
    fn reserve(
        &self,
        held: &mut Option<tokio::sync::OwnedSemaphorePermit>,
        bytes: usize,
    ) -> Result<()> {
        if bytes == 0 {
            return Ok(());
        }
        let permit = u32::try_from(bytes)
            .ok()
            .and_then(|n| self.budget.clone().try_acquire_many_owned(n).ok())
            .ok_or_else(|| {
                Error::limit_exceeded(
                    "the server is receiving too many request bodies; try again",
                    1000,
                )
            })?;
        match held {
            Some(held) => held.merge(permit),
            None => *held = Some(permit),
        }
        Ok(())
    }
}

/// The request body, refused with `M_TOO_LARGE` past [`MAX_BODY_BYTES`]
/// whether or not the sender declared a length (a declared one is refused
/// before anything is read), and bounded by the listener's [`BodyLimits`].
pub fn body_limited() -> impl warp::Filter<Extract = (bytes::Bytes,), Error = Rejection> + Clone {
    use warp::Filter;
    declared_size_fits()
        .and(warp::ext::optional::<BodyLimits>())
        .and(warp::body::stream())
        .and_then(|limits: Option<BodyLimits>, stream| async move {
            let Some(limits) = limits else {
                return collect_limited(stream, None)
                    .await
                    .map_err(warp::reject::custom);
            };
            match tokio::time::timeout(limits.deadline, collect_limited(stream, Some(&limits)))
                .await
            {
                Ok(body) => body.map_err(warp::reject::custom),
                Err(_) => {
                    crate::rate_limit::count_refusal("request bodies too slow");
                    Err(warp::reject::custom(Error::new(
                        StatusCode::REQUEST_TIMEOUT,
                        "M_UNKNOWN",
                        format!(
                            "the request body did not arrive within {} s",
                            limits.deadline.as_secs()
                        ),
                    )))
                }
            }
        })
}

/// Refuses a request whose declared `Content-Length` is over
/// [`MAX_BODY_BYTES`], before anything else is done for it.
pub fn declared_size_fits() -> impl warp::Filter<Extract = (), Error = Rejection> + Clone {
    use warp::Filter;
    warp::header::optional::<u64>("content-length")
        .and_then(|declared: Option<u64>| async move {
            match declared {
                Some(length) if length > MAX_BODY_BYTES => Err(warp::reject::custom(too_large())),
                _ => Ok(()),
            }
        })
        .untuple_one()
}

fn too_large() -> Error {
    Error::too_large(format!(
        "request body is larger than {MAX_BODY_BYTES} bytes"
    ))
}

async fn collect_limited<S, B>(stream: S, limits: Option<&BodyLimits>) -> Result<bytes::Bytes>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>>,
    B: warp::Buf,
{
    use futures_util::TryStreamExt;
    let mut body = bytes::BytesMut::new();
    let mut held = None;
    let mut stream = std::pin::pin!(stream);
    loop {
        let chunk = stream.try_next().await.map_err(|e| {
            Error::new(
                StatusCode::BAD_REQUEST,
                "M_UNKNOWN",
                format!("reading body: {e}"),
            )
        })?;
        let Some(mut chunk) = chunk else {
            return Ok(body.freeze());
        };
        if body.len() + chunk.remaining() > MAX_BODY_BYTES as usize {
            return Err(too_large());
        }
        if let Some(limits) = limits {
            limits.reserve(&mut held, chunk.remaining())?;
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            let n = part.len();
            body.extend_from_slice(part);
            chunk.advance(n);
        }
    }
}

/// Path segments arrive percent-encoded (`[::1]:8448` as `%5B%3A%3A1%5D%3A8448`).
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes a path segment or query value: everything but RFC 3986
/// unreserved characters, so `!room:a.org` and `$event` travel intact.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
