//! A deliberately plain HTTP/1.1 client for tests: one connection per
//! request, TLS trusting only the test CA, no retries, nothing hidden.

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;

pub enum Target {
    Plain(SocketAddr),
    /// TLS to this address, trusting the CA in this PEM file.
    Tls(SocketAddr, PathBuf),
}

fn tls_connector(ca: &PathBuf) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(ca).expect("CA file");
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert.expect("CA cert")).expect("add CA");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// A TLS connection to `addr` trusting only the CA in `ca`, for tests
/// that write the bytes of a request themselves.
pub async fn connect_tls(
    addr: SocketAddr,
    ca: &PathBuf,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tls_connector(ca)
        .connect(ServerName::IpAddress(addr.ip().into()), tcp)
        .await
        .expect("TLS handshake")
}

/// Sends one request; returns the status and the body parsed as JSON (or
/// `null` when it is not JSON).
pub async fn request(
    target: Target,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> (u16, serde_json::Value) {
    let (status, bytes) = request_raw(target, method, uri, headers, body).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

pub async fn request_raw(
    target: Target,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> (u16, Bytes) {
    let (status, _, bytes) = request_full(target, method, uri, headers, body).await;
    (status, bytes)
}

/// [`request_raw`] with the response's headers.
pub async fn request_full(
    target: Target,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> (u16, http::HeaderMap, Bytes) {
    let addr = match &target {
        Target::Plain(a) | Target::Tls(a, _) => *a,
    };
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut builder = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("host", addr.to_string());
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .expect("request");
    let response = match target {
        Target::Plain(_) => {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                .await
                .expect("handshake");
            tokio::spawn(conn);
            sender.send_request(request).await.expect("send")
        }
        Target::Tls(a, ca) => {
            let name = ServerName::IpAddress(a.ip().into());
            let tls = tls_connector(&ca)
                .connect(name, tcp)
                .await
                .expect("TLS handshake");
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .expect("handshake");
            tokio::spawn(conn);
            sender.send_request(request).await.expect("send")
        }
    };
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, headers, bytes)
}

/// Sends only the head of a request whose `content-length` declares a body
/// of `length` bytes, and reads the answer: a server must refuse a body
/// too large without waiting for it.
pub async fn declare_body(
    target: Target,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    length: usize,
) -> (u16, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = format!("{method} {uri} HTTP/1.1\r\nhost: x\r\ncontent-length: {length}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut answer = Vec::new();
    let read = async {
        match target {
            Target::Plain(addr) => {
                let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
                stream.write_all(head.as_bytes()).await.expect("head");
                let _ = stream.read_to_end(&mut answer).await;
            }
            Target::Tls(addr, ca) => {
                let mut stream = connect_tls(addr, &ca).await;
                stream.write_all(head.as_bytes()).await.expect("head");
                let _ = stream.read_to_end(&mut answer).await;
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), read)
        .await
        .expect("answered without the body");
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .and_then(|(_, body)| serde_json::from_str(body).ok())
        .unwrap_or(serde_json::Value::Null);
    (status, body)
}
