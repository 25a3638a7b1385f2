//! The outbound HTTPS client for all federation traffic: one pooled hyper
//! client (HTTP/1.1 and HTTP/2 by ALPN) over rustls with the ring provider,
//! with timeouts, response size limits and the address policy.
//!
//! A request to a server name first resolves its well-known delegation
//! (cached) to an authority; the URI carries that authority, so it is also
//! the `Host` header (and HTTP/2 `:authority`), and connections are pooled
//! per authority. The connector turns the authority into addresses (SRV,
//! AAAA/A) and the certificate name. Spec: server-server-api.md
//! "Resolving server names".

use std::{
    collections::HashSet,
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{header, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::{
    client::legacy::{
        connect::{Connected, Connection},
        Client,
    },
    rt::{TokioExecutor, TokioIo, TokioTimer},
};
use ruma::ServerName;
use rustls::pki_types::ServerName as TlsName;
use tokio::net::TcpStream;
use tokio_rustls::{client::TlsStream, TlsConnector};

use super::{
    backoff::Backoff,
    dns::{split_authority, Dns},
    ip_policy::AddressPolicy,
    well_known::{self, Delegation, WellKnownCache},
};
use crate::config::Config;

/// Largest response body we read from another server.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What is sent to a destination, below its name.
struct Outgoing<'a> {
    method: Method,
    /// Path and query, as signed.
    uri: &'a str,
    body: Option<Vec<u8>>,
    authorization: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach {0}: {1}")]
    Connect(String, String),
    #[error("request to {0} failed: {1}")]
    Request(String, String),
    #[error("{0} did not answer within {1}s")]
    Timeout(String, u64),
    #[error("not trying {0} for another {1}s after {2} failures (last: {3})")]
    BackingOff(String, u64, u32, String),
    #[error("response from {0} is larger than {1} bytes")]
    TooLarge(String, usize),
}

pub struct RemoteResponse {
    pub status: StatusCode,
    pub body: Bytes,
}

pub struct HttpsClient {
    http: Client<Connector, Full<Bytes>>,
    dns: Arc<Dns>,
    policy: Arc<AddressPolicy>,
    well_known: WellKnownCache,
    backoff: Backoff,
    timeout: Duration,
}

/// How a server name resolved to the authority requests go to.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Resolution {
    pub authority: String,
    /// What the well-known step did, in words.
    pub well_known: String,
}

/// A whole response, read within the limits.
struct RawResponse {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Bytes,
}

impl HttpsClient {
    pub fn new(config: &Config) -> Result<Self, String> {
        let tls = crate::net::tls::client_config(
            config.federation.verify_certificates,
            config.federation.extra_ca_file.as_deref(),
        )?;
        let dns = Arc::new(Dns::new(&config.federation.nameservers)?);
        let policy = Arc::new(AddressPolicy::from_config(&config.federation)?);
        let connector = Connector {
            tls: TlsConnector::from(Arc::new(tls)),
            dns: dns.clone(),
            policy: policy.clone(),
        };
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(4)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);
        Ok(Self {
            http,
            dns,
            policy,
            well_known: WellKnownCache::default(),
            backoff: Backoff::default(),
            timeout: Duration::from_secs(config.federation.request_timeout_secs),
        })
    }

    pub fn dns(&self) -> &Arc<Dns> {
        &self.dns
    }

    pub fn policy(&self) -> &AddressPolicy {
        &self.policy
    }

    pub fn backoff(&self) -> &Backoff {
        &self.backoff
    }

    /// Sends one request to `destination` and reads the whole response,
    /// bounded in time and size. `uri` is the path and query, as signed.
    /// Fails at once while the destination is backing off.
    pub async fn request(
        &self,
        destination: &ServerName,
        method: Method,
        uri: &str,
        body: Option<Vec<u8>>,
        authorization: Option<String>,
    ) -> Result<RemoteResponse, ClientError> {
        self.not_backing_off(destination)?;
        let outgoing = Outgoing {
            method,
            uri,
            body,
            authorization,
        };
        self.exchange(destination, outgoing).await
    }

    /// An unsigned `GET`, tried even while backing off: for key fetches (a
    /// server that contacts us must be able to prove who it is) and
    /// diagnostics. The outcome still updates the backoff record.
    pub async fn get_now(
        &self,
        destination: &ServerName,
        uri: &str,
    ) -> Result<RemoteResponse, ClientError> {
        let outgoing = Outgoing {
            method: Method::GET,
            uri,
            body: None,
            authorization: None,
        };
        self.exchange(destination, outgoing).await
    }

    /// Resolves, sends and reads, and records the outcome for backoff.
    async fn exchange(
        &self,
        destination: &ServerName,
        outgoing: Outgoing<'_>,
    ) -> Result<RemoteResponse, ClientError> {
        let authority = self.resolve(destination).await.authority;
        let url = format!("https://{authority}{}", outgoing.uri);
        let result = self
            .send(
                destination.as_str(),
                &url,
                outgoing.method,
                outgoing.body,
                outgoing.authorization,
                MAX_RESPONSE_BYTES,
            )
            .await;
        self.record_outcome(destination, &result);
        let response = result?;
        Ok(RemoteResponse {
            status: response.status,
            body: response.body,
        })
    }

    /// Refuses at once while `destination` is backing off.
    fn not_backing_off(&self, destination: &ServerName) -> Result<(), ClientError> {
        let Err(state) = self.backoff.check(destination) else {
            return Ok(());
        };
        let wait = state
            .retry_at
            .saturating_duration_since(std::time::Instant::now())
            .as_secs();
        Err(ClientError::BackingOff(
            destination.to_string(),
            wait,
            state.consecutive_failures,
            state.last_error,
        ))
    }

    /// A request's outcome, for backoff: only failing to connect or to
    /// answer in time counts against the destination.
    fn record_outcome<T>(&self, destination: &ServerName, result: &Result<T, ClientError>) {
        match result {
            Ok(_) => self.backoff.record_success(destination),
            Err(e @ (ClientError::Connect(..) | ClientError::Timeout(..))) => {
                self.backoff.record_failure(destination, &e.to_string())
            }
            Err(_) => {}
        }
    }

    /// Step 3 of resolution: where `destination` delegates to, if anywhere.
    pub async fn resolve(&self, destination: &ServerName) -> Resolution {
        let host = destination.host();
        if destination.port().is_some() || destination.is_ip_literal() {
            let well_known = "not looked up: the name is an IP literal or has a port".to_owned();
            return Resolution {
                authority: destination.to_string(),
                well_known,
            };
        }
        let (delegation, source) = match self.well_known.get(host) {
            Some(delegation) => (delegation, "cached"),
            None => {
                match self.fetch_well_known(host).await {
                    Ok((delegated, ttl)) => self.well_known.put_success(host, delegated, ttl),
                    Err(reason) => self.well_known.put_failure(host, reason),
                }
                (
                    self.well_known
                        .get(host)
                        .unwrap_or(Delegation::None("not cached".into())),
                    "fetched",
                )
            }
        };
        match delegation {
            Delegation::To(authority) => Resolution {
                well_known: format!("{source}: m.server is {authority}"),
                authority,
            },
            Delegation::None(reason) => Resolution {
                authority: host.to_owned(),
                well_known: format!("{source}: no delegation ({reason})"),
            },
        }
    }

    /// GETs `https://host/.well-known/matrix/server`, following redirects.
    async fn fetch_well_known(&self, host: &str) -> Result<(String, Duration), String> {
        let mut url = format!(
            "https://{}/.well-known/matrix/server",
            with_port(host, 443)?
        );
        let mut seen = HashSet::new();
        for _ in 0..=well_known::MAX_REDIRECTS {
            if !seen.insert(url.clone()) {
                return Err(format!("redirect loop at {url}"));
            }
            let response = self
                .send(
                    host,
                    &url,
                    Method::GET,
                    None,
                    None,
                    well_known::MAX_BODY_BYTES,
                )
                .await
                .map_err(|e| e.to_string())?;
            if response.status.is_redirection() {
                let location = response
                    .headers
                    .get(header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .ok_or_else(|| format!("{} without a Location", response.status))?;
                url = follow(&url, location)?;
                continue;
            }
            let delegated = well_known::parse_response(response.status, &response.body)?;
            return Ok((delegated, well_known::cache_duration(&response.headers)));
        }
        Err(format!("more than {} redirects", well_known::MAX_REDIRECTS))
    }

    async fn send(
        &self,
        name: &str,
        url: &str,
        method: Method,
        body: Option<Vec<u8>>,
        authorization: Option<String>,
        limit: usize,
    ) -> Result<RawResponse, ClientError> {
        let exchange = async {
            let response = self.start(name, url, method, body, authorization).await?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, limit)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        ClientError::TooLarge(name.to_owned(), limit)
                    } else {
                        ClientError::Request(name.to_owned(), e.to_string())
                    }
                })?
                .to_bytes();
            Ok(RawResponse {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| ClientError::Timeout(name.to_owned(), self.timeout.as_secs()))?
    }

    /// Sends a request and waits for the response's head.
    async fn start(
        &self,
        name: &str,
        url: &str,
        method: Method,
        body: Option<Vec<u8>>,
        authorization: Option<String>,
    ) -> Result<http::Response<hyper::body::Incoming>, ClientError> {
        let request_error = |e: String| ClientError::Request(name.to_owned(), e);
        let url: Uri = url.parse().map_err(|e| request_error(format!("{e}")))?;
        let mut builder = Request::builder().method(method).uri(url);
        if let Some(auth) = authorization {
            builder = builder.header(header::AUTHORIZATION, auth);
        }
        if body.is_some() {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
        }
        let request = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| request_error(e.to_string()))?;
        self.http
            .request(request)
            .await
            .map_err(|e| describe(name, e))
    }

    /// A `GET` to `destination` whose body the caller reads as it arrives
    /// (media, far larger than [`MAX_RESPONSE_BYTES`]); only the head is
    /// awaited within the request timeout. Fails at once while the
    /// destination is backing off.
    pub async fn get_streaming(
        &self,
        destination: &ServerName,
        uri: &str,
        authorization: Option<String>,
    ) -> Result<http::Response<hyper::body::Incoming>, ClientError> {
        self.not_backing_off(destination)?;
        let authority = self.resolve(destination).await.authority;
        let url = format!("https://{authority}{uri}");
        let result = self
            .head_within_timeout(destination.as_str(), &url, authorization)
            .await;
        self.record_outcome(destination, &result);
        result
    }

    /// A `GET` of an `https://` URL another server pointed us to (a media
    /// redirect), through the same address policy; streamed like
    /// [`Self::get_streaming`].
    pub async fn get_url_streaming(
        &self,
        url: &str,
    ) -> Result<http::Response<hyper::body::Incoming>, ClientError> {
        if url.starts_with('/') {
            let why = "not an absolute URL".into();
            return Err(ClientError::Request(url.into(), why));
        }
        // An absolute URL does not depend on the base `follow` is given.
        let absolute =
            follow("https://unused", url).map_err(|e| ClientError::Request(url.into(), e))?;
        self.head_within_timeout(url, &absolute, None).await
    }

    async fn head_within_timeout(
        &self,
        name: &str,
        url: &str,
        authorization: Option<String>,
    ) -> Result<http::Response<hyper::body::Incoming>, ClientError> {
        tokio::time::timeout(
            self.timeout,
            self.start(name, url, Method::GET, None, authorization),
        )
        .await
        .map_err(|_| ClientError::Timeout(name.to_owned(), self.timeout.as_secs()))?
    }
}

/// `host` with an explicit port, so the connector does an address lookup
/// rather than the SRV steps meant for server names.
fn with_port(host: &str, port: u16) -> Result<String, String> {
    let (host, explicit) = split_authority(host)?;
    let port = explicit.unwrap_or(port);
    Ok(if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    })
}

/// The absolute URL a redirect points to (HTTPS only).
fn follow(current: &str, location: &str) -> Result<String, String> {
    if location.starts_with('/') {
        let current: Uri = current.parse().map_err(|e| format!("{e}"))?;
        let authority = current.authority().ok_or("no authority")?;
        return Ok(format!("https://{authority}{location}"));
    }
    let target: Uri = location
        .parse()
        .map_err(|e| format!("bad redirect {location:?}: {e}"))?;
    if target.scheme_str() != Some("https") {
        return Err(format!(
            "refusing to follow a redirect to {location:?}: not https"
        ));
    }
    let authority = target
        .authority()
        .ok_or_else(|| format!("bad redirect {location:?}"))?;
    let path = target.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    Ok(format!(
        "https://{}{path}",
        with_port(authority.as_str(), 443)?
    ))
}

/// hyper hides the cause of a failed connect behind its own error; dig it out.
fn describe(name: &str, error: hyper_util::client::legacy::Error) -> ClientError {
    let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(&error);
    let mut deepest = error.to_string();
    while let Some(c) = cause {
        deepest = c.to_string();
        cause = c.source();
    }
    if error.is_connect() {
        ClientError::Connect(name.to_owned(), deepest)
    } else {
        ClientError::Request(name.to_owned(), deepest)
    }
}

/// Connects to a server name: resolve, apply the address policy to the
/// address actually dialled, then TLS with the name as SNI (none for IPs).
#[derive(Clone)]
struct Connector {
    tls: TlsConnector,
    dns: Arc<Dns>,
    policy: Arc<AddressPolicy>,
}

impl tower_service::Service<Uri> for Connector {
    type Response = TlsConnection;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<TlsConnection, io::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.connect(uri).await })
    }
}

fn io_error(message: String) -> io::Error {
    io::Error::other(message)
}

impl Connector {
    async fn connect(self, uri: Uri) -> io::Result<TlsConnection> {
        let authority = uri
            .authority()
            .ok_or_else(|| io_error("no authority in URI".into()))?;
        let endpoints = self
            .dns
            .endpoints(authority.as_str())
            .await
            .map_err(io_error)?;
        let stream = dial(&self.policy, authority.as_str(), &endpoints.addresses).await?;
        let tls_name = TlsName::try_from(endpoints.tls_name.clone()).map_err(|e| {
            io_error(format!(
                "{} is not a valid TLS name: {e}",
                endpoints.tls_name
            ))
        })?;
        let tls = tokio::time::timeout(CONNECT_TIMEOUT, self.tls.connect(tls_name, stream))
            .await
            .map_err(|_| io_error(format!("TLS handshake with {authority} timed out")))??;
        Ok(TlsConnection(TokioIo::new(tls)))
    }
}

/// Connects to the first address that the policy permits and that answers.
/// The policy is applied to each address actually dialled, so a DNS answer
/// cannot smuggle in a private one.
pub async fn dial(
    policy: &AddressPolicy,
    name: &str,
    addrs: &[SocketAddr],
) -> io::Result<TcpStream> {
    let mut last_error = io_error(format!("{name} resolved to no address"));
    for addr in addrs {
        if !policy.permits(addr.ip()) {
            last_error = io_error(format!(
                "{name} resolved to {} which is not a public address \
                 (allow it with federation.allow_private_addresses or federation.ip_allowlist)",
                addr.ip()
            ));
            continue;
        }
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Ok(Err(e)) => last_error = io_error(format!("connecting to {addr}: {e}")),
            Err(_) => last_error = io_error(format!("connecting to {addr} timed out")),
        }
    }
    Err(last_error)
}

/// A TLS connection that tells hyper whether HTTP/2 was negotiated.
struct TlsConnection(TokioIo<TlsStream<TcpStream>>);

impl Connection for TlsConnection {
    fn connected(&self) -> Connected {
        let (_, session) = self.0.inner().get_ref();
        if session.alpn_protocol() == Some(b"h2") {
            Connected::new().negotiated_h2()
        } else {
            Connected::new()
        }
    }
}

impl hyper::rt::Read for TlsConnection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for TlsConnection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}
