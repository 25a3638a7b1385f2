//! Inbound request authentication: the `X-Matrix` Authorization scheme.
//! Spec: server-server-api.md "Request Authentication".

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method};
use ruma::{
    api::federation::authentication::XMatrix,
    serde::{base64::Standard, Base64},
    CanonicalJsonObject, CanonicalJsonValue, OwnedServerName, ServerName,
};
use warp::{filters::path::FullPath, Filter, Rejection};

use crate::inbound::admission::{Admission, Admitted};
use crate::{
    error::{Error, Result},
    http_util::{body_limited, declared_size_fits, raw_query},
    keys::{remote::KeyUse, verify::verify_bytes, KeyService},
    net::https::HttpsClient,
};

/// A request whose signature checked out: who sent it, and its body.
pub struct Authenticated {
    pub origin: OwnedServerName,
    pub body: Bytes,
    /// The origin's request slot, held while the request is handled.
    admitted: Option<Admitted>,
}

impl Authenticated {
    /// Waits for a slot among the origin's requests (or is refused).
    pub async fn admitted_by(mut self, admission: &Arc<Admission>) -> Result<Self> {
        self.admitted = Some(admission.admit(&self.origin).await?);
        Ok(self)
    }
}

/// Rejects the request unless it carries a valid `X-Matrix` signature from
/// the server it claims to come from, addressed to us. The header is
/// checked and the origin's key found before the body is read, so a
/// stranger's body is never taken in. A server that reaches us is up: its
/// outbound backoff is cleared, as Synapse does.
pub fn authenticated(
    keys: Arc<KeyService>,
    client: Arc<HttpsClient>,
) -> impl Filter<Extract = (Authenticated,), Error = Rejection> + Clone {
    let claimed = {
        let keys = keys.clone();
        declared_size_fits()
            .and(warp::header::headers_cloned())
            .and_then(move |headers: HeaderMap| {
                let keys = keys.clone();
                async move {
                    claimed_key(&keys, &headers)
                        .await
                        .map_err(warp::reject::custom)
                }
            })
    };
    warp::method()
        .and(warp::path::full())
        .and(raw_query())
        .and(claimed)
        .and(body_limited())
        .and_then(
            move |method: Method,
                  path: FullPath,
                  query: String,
                  (x_matrix, public_key): (XMatrix, String),
                  body: Bytes| {
                let (keys, client) = (keys.clone(), client.clone());
                async move {
                    let uri = if query.is_empty() {
                        path.as_str().to_owned()
                    } else {
                        format!("{}?{query}", path.as_str())
                    };
                    let request =
                        SignedRequest::addressed(x_matrix, &method, &uri, keys.server_name(), body);
                    request.verify(&public_key).map_err(warp::reject::custom)?;
                    client.backoff().record_success(&request.x_matrix.origin);
                    Ok::<_, Rejection>(Authenticated {
                        origin: request.x_matrix.origin,
                        body: request.body,
                        admitted: None,
                    })
                }
            },
        )
}

/// The `X-Matrix` header, if it is addressed to us, and the public key
/// of the key it names.
async fn claimed_key(keys: &KeyService, headers: &HeaderMap) -> Result<(XMatrix, String)> {
    let x_matrix = parse_x_matrix(headers)?;
    addressed_to(&x_matrix, keys.server_name())?;
    let key = keys
        .remote_key(&x_matrix.origin, x_matrix.key.as_str(), KeyUse::Request)
        .await?;
    Ok((x_matrix, key))
}

fn addressed_to(x_matrix: &XMatrix, us: &ServerName) -> Result<()> {
    match &x_matrix.destination {
        Some(destination) if destination != us => Err(Error::unauthorized(format!(
            "request is for {destination}, but this server is {us}"
        ))),
        _ => Ok(()),
    }
}

/// Parses the `Authorization` header. ruma's parser follows RFC 9110
/// strictly; the spec also asks us to accept unquoted values containing
/// colons (`origin=example.org:8448`) from older servers, so unquoted
/// values that are not RFC 9110 tokens are quoted first.
pub fn parse_x_matrix(headers: &HeaderMap) -> Result<XMatrix> {
    let value = headers
        .get(http::header::AUTHORIZATION)
        .ok_or_else(|| Error::unauthorized("missing Authorization header"))?;
    let text = value.to_str().map_err(|_| {
        Error::new(
            http::StatusCode::BAD_REQUEST,
            "M_UNAUTHORIZED",
            "Authorization header is not ASCII",
        )
    })?;
    XMatrix::parse(quote_non_token_values(text)).map_err(|e| {
        Error::new(
            http::StatusCode::BAD_REQUEST,
            "M_UNAUTHORIZED",
            format!("malformed X-Matrix Authorization header: {e}"),
        )
    })
}

fn quote_non_token_values(header: &str) -> String {
    let Some((scheme, params)) = header.trim_start().split_once(' ') else {
        return header.to_owned();
    };
    let quoted: Vec<String> = params
        .split(',')
        .map(|param| match param.split_once('=') {
            Some((name, value)) if !value.trim().starts_with('"') && !is_token(value.trim()) => {
                format!("{}=\"{}\"", name.trim(), value.trim())
            }
            _ => param.to_owned(),
        })
        .collect();
    format!("{scheme} {}", quoted.join(","))
}

/// RFC 9110 `token` characters.
fn is_token(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A request's claimed signature and the JSON it should cover, built
/// before the origin's key is looked up.
pub struct SignedRequest {
    x_matrix: XMatrix,
    /// The signed fields but the content, in canonical form.
    fields: String,
    body: Bytes,
}

impl SignedRequest {
    /// Parses the header, checks it is addressed to `us` and assembles the
    /// signed object (method, uri, origin, destination, content).
    pub fn new(
        headers: &HeaderMap,
        method: &Method,
        uri: &str,
        us: &ServerName,
        body: Bytes,
    ) -> Result<Self> {
        let x_matrix = parse_x_matrix(headers)?;
        addressed_to(&x_matrix, us)?;
        Ok(Self::addressed(x_matrix, method, uri, us, body))
    }

    /// The same from a header already parsed and found addressed to `us`.
    fn addressed(
        x_matrix: XMatrix,
        method: &Method,
        uri: &str,
        us: &ServerName,
        body: Bytes,
    ) -> Self {
        let fields = CanonicalJsonObject::from([
            ("method".to_owned(), method.as_str().into()),
            ("uri".to_owned(), uri.into()),
            ("origin".to_owned(), x_matrix.origin.as_str().into()),
            ("destination".to_owned(), us.as_str().into()),
        ]);
        let fields = CanonicalJsonValue::Object(fields).to_string();
        Self {
            x_matrix,
            fields,
            body,
        }
    }

    pub fn origin(&self) -> &ServerName {
        &self.x_matrix.origin
    }

    /// Checks the signature against the origin's public key (unpadded
    /// base64). Servers send canonical JSON bodies (Synapse does, and so
    /// do we), so the body is first spliced in as sent: a 50-PDU body is
    /// then neither parsed nor serialised here. Only the origin can sign
    /// those exact bytes, and the route still parses the body strictly; a
    /// body sent in another form is canonicalised and checked again.
    pub fn verify(&self, public_key: &str) -> Result<()> {
        let public_key = decode(public_key)?;
        let signature = self.x_matrix.sig.as_bytes();
        let spliced = self.spliced();
        if let Some(spliced) = &spliced {
            if verify_bytes(&public_key, signature, spliced.as_bytes()) {
                return Ok(());
            }
        }
        // A body already canonical is not checked twice (a forged request
        // would otherwise cost two verifications).
        let canonical = self.canonical()?;
        if spliced.as_ref() != Some(&canonical)
            && verify_bytes(&public_key, signature, canonical.as_bytes())
        {
            Ok(())
        } else {
            Err(Error::unauthorized(format!(
                "X-Matrix signature by {} with {} does not verify",
                self.x_matrix.origin, self.x_matrix.key
            )))
        }
    }

    /// The signed JSON with the body as sent, if it is text.
    fn spliced(&self) -> Option<String> {
        if self.body.is_empty() {
            return Some(self.fields.clone());
        }
        std::str::from_utf8(&self.body)
            .ok()
            .map(|body| self.with_content(body))
    }

    /// The signed JSON with the body in canonical form.
    fn canonical(&self) -> Result<String> {
        if self.body.is_empty() {
            return Ok(self.fields.clone());
        }
        let content: CanonicalJsonValue = serde_json::from_slice(&self.body).map_err(|e| {
            Error::not_json(format!(
                "request body is not canonical-compatible JSON: {e}"
            ))
        })?;
        Ok(self.with_content(&content.to_string()))
    }

    /// The signed fields with `content` added: it sorts first.
    fn with_content(&self, content: &str) -> String {
        format!("{{\"content\":{content},{}", &self.fields[1..])
    }
}

fn decode(public_key: &str) -> Result<Vec<u8>> {
    Base64::<Standard, Vec<u8>>::parse(public_key)
        .map(Base64::into_inner)
        .map_err(|e| Error::unauthorized(format!("origin's public key: {e}")))
}

#[cfg(test)]
mod tests;
