//! One error type for the whole server: every failure maps to a Matrix
//! `{"errcode": "M_…", "error": "…"}` body with the right HTTP status.

use http::{header, HeaderValue, StatusCode};
use serde::Serialize;
use serde_json::json;
use warp::reply::Response;

/// A failure that can be shown to a Matrix client or server.
#[derive(Debug, Clone)]
pub struct Error {
    pub status: StatusCode,
    pub errcode: &'static str,
    pub message: String,
    /// Fields some errors carry besides errcode and error (`room_version`).
    pub extra: Option<Box<serde_json::Map<String, serde_json::Value>>>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(status: StatusCode, errcode: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            errcode,
            message: message.into(),
            extra: None,
        }
    }

    /// An answer with this status whose body is only the fields added
    /// with [`Self::with_field`]: user-interactive auth's first 401 has
    /// no `errcode`.
    pub fn bare(status: StatusCode) -> Self {
        Self::new(status, "", "")
    }

    /// Adds a field to the error body.
    pub fn with_field(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.extra
            .get_or_insert_with(Default::default)
            .insert(key.to_owned(), value.into());
        self
    }

    /// 429: the caller should wait `retry_after_ms` and try again.
    pub fn limit_exceeded(message: impl Into<String>, retry_after_ms: u64) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "M_LIMIT_EXCEEDED", message)
            .with_field("retry_after_ms", retry_after_ms)
    }

    /// 401 for an access, admin or OpenID token we do not know.
    pub fn unknown_token(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "M_UNKNOWN_TOKEN", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "M_UNAUTHORIZED", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "M_FORBIDDEN", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "M_NOT_FOUND", message)
    }

    pub fn unrecognized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "M_UNRECOGNIZED", message)
    }

    pub fn not_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "M_NOT_JSON", message)
    }

    pub fn bad_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "M_BAD_JSON", message)
    }

    /// Reserved by an application service (400 `M_EXCLUSIVE`).
    pub fn exclusive(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "M_EXCLUSIVE", message)
    }

    pub fn invalid_param(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "M_INVALID_PARAM", message)
    }

    pub fn missing_param(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "M_MISSING_PARAM", message)
    }

    pub fn invalid_username(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "M_INVALID_USERNAME", message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "M_TOO_LARGE", message)
    }

    /// A failure on our side (storage, a bug); the message is still specific.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "M_UNKNOWN", message)
    }

    /// A remote server could not be reached or answered badly.
    pub fn remote(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, "M_UNKNOWN", message)
    }

    pub fn into_response(self) -> Response {
        let mut body = if self.errcode.is_empty() {
            json!({})
        } else {
            json!({ "errcode": self.errcode, "error": self.message })
        };
        if let (Some(extra), Some(object)) = (self.extra, body.as_object_mut()) {
            object.extend(*extra);
        }
        json_response(self.status, &body)
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.errcode,
            self.status.as_u16(),
            self.message
        )
    }
}

impl std::error::Error for Error {}

impl warp::reject::Reject for Error {}

impl From<crate::store::StoreError> for Error {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            // The spec's code for a server out of a resource such as disk
            // space (Element shows it as such); 507 Insufficient Storage.
            crate::store::StoreError::Full => Self::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "M_RESOURCE_LIMIT_EXCEEDED",
                e.to_string(),
            ),
            other => Self::internal(other.to_string()),
        }
    }
}

pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    // Serialising a serde_json::Value or a derived struct cannot fail.
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(bytes.into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
