//! Fetching a web page (or its image) for a URL preview: HTTP/1.1 over
//! `http` or `https`, every address dialled only if the preview policy
//! permits it (a name that resolves to a private address, or a redirect
//! to one, is refused), at most five redirects, each checked again, and
//! the body bounded in bytes and the whole in time. A user's URL must
//! not become a way into the server's own network.

use std::{net::IpAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use http::{header, Request, Uri};
use http_body_util::{BodyExt, Empty, Limited};
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
pub enum PageError {
    /// The URL, or a redirect, leads to an address the policy refuses.
    Refused(String),
    TooLarge,
    Failed(String),
}

pub struct PageFetcher {
    dns: Arc<Dns>,
    policy: AddressPolicy,
    tls: TlsConnector,
}

impl PageFetcher {
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
    pub async fn get(
        &self,
        url: &str,
        limit: usize,
        deadline: Duration,
    ) -> Result<Page, PageError> {
        tokio::time::timeout(deadline, self.follow(url, limit))
            .await
            .map_err(|_| {
                PageError::Failed(format!("{url} took more than {}s", deadline.as_secs()))
            })?
    }

    async fn follow(&self, url: &str, limit: usize) -> Result<Page, PageError> {
        let mut url: Uri = url
            .parse()
            .map_err(|e| PageError::Failed(format!("{url:?} is not a URL: {e}")))?;
        for _ in 0..=MAX_REDIRECTS {
            let response = self.once(&url).await?;
            if response.status().is_redirection() {
                let location = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .ok_or_else(|| PageError::Failed("a redirect without a Location".into()))?;
                url = redirect(&url, location)?;
                continue;
            }
            if !response.status().is_success() {
                return Err(PageError::Failed(format!(
                    "{url} answered {}",
                    response.status()
                )));
            }
            let content_type = response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|t| t.to_str().ok())
                .map(str::to_owned);
            let body = Limited::new(response.into_body(), limit)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        PageError::TooLarge
                    } else {
                        PageError::Failed(e.to_string())
                    }
                })?
                .to_bytes();
            return Ok(Page { content_type, body });
        }
        Err(PageError::Failed(format!(
            "more than {MAX_REDIRECTS} redirects"
        )))
    }

    /// One request to `url`, over a connection made for it.
    async fn once(&self, url: &Uri) -> Result<http::Response<hyper::body::Incoming>, PageError> {
        let failed = |e: String| PageError::Failed(format!("{url}: {e}"));
        let https = match url.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(PageError::Failed(format!("{url} is not http or https"))),
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
            return Err(PageError::Refused(format!(
                "{host} is not a public address, and this server previews only public pages"
            )));
        }
        let tcp = dial(&self.policy, &host, &permitted)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let path = url.path_and_query().map_or("/", |p| p.as_str());
        let request = Request::get(path)
            .header(
                header::HOST,
                url.authority().map_or(host.as_str(), |a| a.as_str()),
            )
            .header(header::USER_AGENT, "hearth (Matrix URL preview)")
            .header(header::ACCEPT, "text/html, image/*;q=0.8, */*;q=0.1")
            .body(Empty::<Bytes>::new())
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

async fn send<T>(
    io: T,
    request: Request<Empty<Bytes>>,
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
fn redirect(from: &Uri, location: &str) -> Result<Uri, PageError> {
    let bad = |e: String| PageError::Failed(format!("bad redirect {location:?}: {e}"));
    if location.starts_with('/') && !location.starts_with("//") {
        let scheme = from.scheme_str().unwrap_or("https");
        let authority = from.authority().map_or("", |a| a.as_str());
        return format!("{scheme}://{authority}{location}")
            .parse()
            .map_err(|e| bad(format!("{e}")));
    }
    location.parse().map_err(|e| bad(format!("{e}")))
}
