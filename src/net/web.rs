//! Requests to URLs users give: a web page (or its image) for a URL
//! preview, a notification to a push gateway. HTTP/1.1 over `http` or
//! `https`, every address dialled only if the client's policy permits it
//! (a name that resolves to a private address, or a redirect to one, is
//! refused), at most five redirects for a page, each checked again, none
//! for a push, and the answer bounded in bytes and the whole in time. A
//! user's URL must not become a way into the server's own network.

use std::{net::IpAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use http::{header, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName as TlsName;
use tokio_rustls::TlsConnector;

use super::{dns::Dns, https::dial, ip_policy::AddressPolicy};

const MAX_REDIRECTS: usize = 5;

/// A page as fetched.
pub struct Page {
    pub content_type: Option<String>,
    pub body: Bytes,
}

#[derive(Debug)]
pub enum WebError {
    /// The URL, or a redirect, leads to an address the policy refuses.
    Refused(String),
    TooLarge,
    Failed(String),
}

pub struct WebClient {
    dns: Arc<Dns>,
    policy: AddressPolicy,
    tls: TlsConnector,
}

impl WebClient {
    pub fn new(dns: Arc<Dns>, policy: AddressPolicy, tls: rustls::ClientConfig) -> Self {
        let mut tls = tls;
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Self {
            dns,
            policy,
            tls: TlsConnector::from(Arc::new(tls)),
        }
    }

    /// GETs `url`, following redirects, reading at most `limit` bytes,
    /// all within `deadline`.
    pub async fn get(&self, url: &str, limit: usize, deadline: Duration) -> Result<Page, WebError> {
        tokio::time::timeout(deadline, self.follow(url, limit))
            .await
            .map_err(|_| {
                WebError::Failed(format!("{url} took more than {}s", deadline.as_secs()))
            })?
    }

    /// POSTs the JSON `body` to `url`, following no redirect: the status
    /// and at most `limit` bytes of the answer, all within `deadline`.
    pub async fn post_json(
        &self,
        url: &str,
        body: Bytes,
        limit: usize,
        deadline: Duration,
    ) -> Result<(StatusCode, Bytes), WebError> {
        let headers = [
            (header::USER_AGENT, "hearth (Matrix push)"),
            (header::CONTENT_TYPE, "application/json"),
        ];
        self.call(Method::POST, url, &headers, body, (limit, deadline))
            .await
    }

    /// One request to `url` with `headers` and `body`, following no
    /// redirect: the status and at most `limit` bytes of the answer, all
    /// within `deadline`.
    pub async fn call(
        &self,
        method: Method,
        url: &str,
        headers: &[(header::HeaderName, &str)],
        body: Bytes,
        (limit, deadline): (usize, Duration),
    ) -> Result<(StatusCode, Bytes), WebError> {
        let call = async {
            let url: Uri = url
                .parse()
                .map_err(|e| WebError::Failed(format!("{url:?} is not a URL: {e}")))?;
            let response = self.once(&url, method, body, headers).await?;
            let status = response.status();
            let answer = read_limited(response, limit).await?;
            Ok((status, answer))
        };
        tokio::time::timeout(deadline, call).await.map_err(|_| {
            WebError::Failed(format!("{url} took more than {}s", deadline.as_secs()))
        })?
    }

    async fn follow(&self, url: &str, limit: usize) -> Result<Page, WebError> {
        let mut url: Uri = url
            .parse()
            .map_err(|e| WebError::Failed(format!("{url:?} is not a URL: {e}")))?;
        let headers = [
            (header::USER_AGENT, "hearth (Matrix URL preview)"),
            (header::ACCEPT, "text/html, image/*;q=0.8, */*;q=0.1"),
        ];
        for _ in 0..=MAX_REDIRECTS {
            let response = self.once(&url, Method::GET, Bytes::new(), &headers).await?;
            if response.status().is_redirection() {
                let location = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .ok_or_else(|| WebError::Failed("a redirect without a Location".into()))?;
                url = redirect(&url, location)?;
                continue;
            }
            if !response.status().is_success() {
                return Err(WebError::Failed(format!(
                    "{url} answered {}",
                    response.status()
                )));
            }
            let content_type = response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|t| t.to_str().ok())
                .map(str::to_owned);
            let body = read_limited(response, limit).await?;
            return Ok(Page { content_type, body });
        }
        Err(WebError::Failed(format!(
            "more than {MAX_REDIRECTS} redirects"
        )))
    }

    /// One request to `url`, over a connection made for it.
    async fn once(
        &self,
        url: &Uri,
        method: Method,
        body: Bytes,
        headers: &[(header::HeaderName, &str)],
    ) -> Result<http::Response<hyper::body::Incoming>, WebError> {
        let failed = |e: String| WebError::Failed(format!("{url}: {e}"));
        let https = match url.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(WebError::Failed(format!("{url} is not http or https"))),
        };
        let host = url
            .host()
            .ok_or_else(|| failed("no host".into()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = url.port_u16().unwrap_or(if https { 443 } else { 80 });
        let ips = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => self
                .dns
                .addresses(&host, &mut Vec::new())
                .await
                .map_err(failed)?,
        };
        let permitted: Vec<_> = ips
            .into_iter()
            .filter(|ip| self.policy.permits(*ip))
            .map(|ip| std::net::SocketAddr::new(ip, port))
            .collect();
        if permitted.is_empty() {
            return Err(WebError::Refused(format!(
                "{host} is not a public address, and this server previews only public pages"
            )));
        }
        let tcp = dial(&self.policy, &host, &permitted)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let path = url.path_and_query().map_or("/", |p| p.as_str());
        let mut request = Request::builder().method(method).uri(path).header(
            header::HOST,
            url.authority().map_or(host.as_str(), |a| a.as_str()),
        );
        for (name, value) in headers {
            request = request.header(name, *value);
        }
        let request = request
            .body(Full::new(body))
            .map_err(|e| failed(e.to_string()))?;
        if https {
            let name = TlsName::try_from(host.clone()).map_err(|e| failed(e.to_string()))?;
            let tls = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(|e| failed(e.to_string()))?;
            send(TokioIo::new(tls), request).await.map_err(failed)
        } else {
            send(TokioIo::new(tcp), request).await.map_err(failed)
        }
    }
}

/// At most `limit` bytes of a response's body.
async fn read_limited(
    response: http::Response<hyper::body::Incoming>,
    limit: usize,
) -> Result<Bytes, WebError> {
    Ok(Limited::new(response.into_body(), limit)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                WebError::TooLarge
            } else {
                WebError::Failed(e.to_string())
            }
        })?
        .to_bytes())
}

async fn send<T>(
    io: T,
    request: Request<Full<Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())
}

/// Where a redirect from `from` to `location` goes (absolute or not).
fn redirect(from: &Uri, location: &str) -> Result<Uri, WebError> {
    let bad = |e: String| WebError::Failed(format!("bad redirect {location:?}: {e}"));
    if location.starts_with('/') && !location.starts_with("//") {
        let scheme = from.scheme_str().unwrap_or("https");
        let authority = from.authority().map_or("", |a| a.as_str());
        return format!("{scheme}://{authority}{location}")
            .parse()
            .map_err(|e| bad(format!("{e}")));
    }
    location.parse().map_err(|e| bad(format!("{e}")))
}
