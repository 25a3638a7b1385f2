//! The outbound HTTPS client for all federation traffic: one pooled hyper
//! client (HTTP/1.1 and HTTP/2 by ALPN) over rustls with the ring provider,
//! with timeouts, response size limits and the private-address policy.
//!
//! Server names are resolved here only for IP literals and `host:port`
//! (default port 8448); full discovery (well-known, SRV) is layered on later.

use std::{
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

use super::ip_policy;
use crate::config::Config;

/// Largest response body we read from another server.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_PORT: u16 = 8448;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach {0}: {1}")]
    Connect(String, String),
    #[error("request to {0} failed: {1}")]
    Request(String, String),
    #[error("{0} did not answer within {1}s")]
    Timeout(String, u64),
    #[error("response from {0} is larger than {1} bytes")]
    TooLarge(String, usize),
}

pub struct RemoteResponse {
    pub status: StatusCode,
    pub body: Bytes,
}

pub struct FederationClient {
    http: Client<Connector, Full<Bytes>>,
    timeout: Duration,
}

impl FederationClient {
    pub fn new(config: &Config) -> Result<Self, String> {
        let tls = crate::tls::client_config(
            config.federation.verify_certificates,
            config.federation.extra_ca_file.as_deref(),
        )?;
        let connector = Connector {
            tls: TlsConnector::from(Arc::new(tls)),
            allow_private: config.federation.allow_private_addresses,
        };
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(4)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);
        Ok(Self {
            http,
            timeout: Duration::from_secs(config.federation.request_timeout_secs),
        })
    }

    /// Sends one request to `destination` and reads the whole response,
    /// bounded in time and size. `uri` is the path and query, as signed.
    pub async fn request(
        &self,
        destination: &ServerName,
        method: Method,
        uri: &str,
        body: Option<Vec<u8>>,
        authorization: Option<String>,
    ) -> Result<RemoteResponse, ClientError> {
        let name = destination.to_string();
        let request_error = |e: String| ClientError::Request(name.clone(), e);
        let url: Uri = format!("https://{destination}{uri}")
            .parse()
            .map_err(|e| request_error(format!("{e}")))?;
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
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| describe(&name, e))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        ClientError::TooLarge(name.clone(), MAX_RESPONSE_BYTES)
                    } else {
                        ClientError::Request(name.clone(), e.to_string())
                    }
                })?
                .to_bytes();
            Ok(RemoteResponse { status, body })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| ClientError::Timeout(name.clone(), self.timeout.as_secs()))?
    }
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
    allow_private: bool,
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
        let host = uri
            .host()
            .ok_or_else(|| io_error("no host in URI".into()))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(DEFAULT_PORT);
        let addrs: Vec<SocketAddr> = match host.parse() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((host.as_str(), port))
                .await?
                .collect(),
        };
        let stream = self.dial(&host, &addrs).await?;
        let tls_name = TlsName::try_from(host.clone())
            .map_err(|e| io_error(format!("{host} is not a valid TLS name: {e}")))?;
        let tls = tokio::time::timeout(CONNECT_TIMEOUT, self.tls.connect(tls_name, stream))
            .await
            .map_err(|_| io_error(format!("TLS handshake with {host} timed out")))??;
        Ok(TlsConnection(TokioIo::new(tls)))
    }

    async fn dial(&self, host: &str, addrs: &[SocketAddr]) -> io::Result<TcpStream> {
        let mut last_error = io_error(format!("{host} resolved to no address"));
        for addr in addrs {
            if !self.allow_private && !ip_policy::is_public(addr.ip()) {
                last_error = io_error(format!(
                    "{host} resolved to {} which is not a public address \
                     (set federation.allow_private_addresses to allow it)",
                    addr.ip()
                ));
                continue;
            }
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => {
                    stream.set_nodelay(true)?;
                    return Ok(stream);
                }
                Ok(Err(e)) => last_error = e,
                Err(_) => last_error = io_error(format!("connecting to {addr} timed out")),
            }
        }
        Err(last_error)
    }
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
