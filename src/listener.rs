//! Accepting connections as the open internet sends them: a cap on
//! connections per address and in total (checked before anything is
//! read), idle connections closed, a deadline on request headers, and
//! each request handed the body budget that bounds how much of the bodies
//! being received the server holds at once ([`BodyLimits`]).

mod connections;
mod idle;

use std::{convert::Infallible, net::IpAddr, sync::Arc, time::Duration};

use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpListener,
};
use tokio_rustls::TlsAcceptor;
use warp::Filter;

pub use connections::{Connections, Refusal};
use idle::{Activity, Watched};

use crate::{config::Limits, http_util::BodyLimits};

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP/2 requests in progress on one connection; the per-address
/// connection cap bounds the rest.
const MAX_STREAMS: u32 = 16;
/// Request headers larger than this end the connection.
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// How long a connection told to close may finish what it is writing.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// The address a request came from, as far as the server can tell: the
/// peer, or for a configured proxy the last `X-Forwarded-For` hop (absent
/// when the proxy names none).
#[derive(Clone, Copy, Debug)]
pub struct PeerIp(pub IpAddr);

/// What every connection of both listeners shares.
#[derive(Clone)]
pub struct Listening {
    pub connections: Arc<Connections>,
    pub bodies: BodyLimits,
    idle: Duration,
    header: Duration,
}

impl Listening {
    pub fn new(limits: &Limits) -> Self {
        Self {
            connections: Arc::new(Connections::new(limits)),
            bodies: BodyLimits::new(
                limits.body_mib_in_flight * 1024 * 1024,
                Duration::from_secs(limits.body_timeout_secs),
            ),
            idle: Duration::from_secs(limits.idle_timeout_secs),
            header: Duration::from_secs(limits.header_timeout_secs),
        }
    }
}

/// Accepts connections forever, each served on its own task.
pub async fn serve<F>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    filter: F,
    listening: Listening,
) where
    F: Filter<Error = Infallible> + Clone + Send + Sync + 'static,
    F::Extract: warp::Reply,
{
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Typically out of file descriptors: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Refused connections are closed before anything is read from them.
        let Ok(slot) = listening.connections.open(peer.ip()) else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let activity = Activity::new();
        let stream = Watched::new(stream, activity.clone());
        let connection = Connection {
            activity,
            listening: listening.clone(),
            peer: peer.ip(),
        };
        let filter = filter.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match tls {
                None => connection.serve(stream, filter).await,
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls_stream)) => connection.serve(tls_stream, filter).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
}

/// One accepted connection: its activity (for the idle timeout) and what
/// its requests are handed.
struct Connection {
    activity: Arc<Activity>,
    listening: Listening,
    peer: IpAddr,
}

impl Connection {
    async fn serve<IO, F>(self, io: IO, filter: F)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        F: Filter<Error = Infallible> + Clone + Send + Sync + 'static,
        F::Extract: warp::Reply,
    {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.listening.header)
            .max_buf_size(MAX_HEADER_BYTES);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(MAX_STREAMS)
            .max_header_list_size(MAX_HEADER_BYTES as u32);
        let this = Arc::new(self);
        let warp_service = warp::service(filter);
        let service = hyper::service::service_fn({
            let this = this.clone();
            move |mut request: http::Request<hyper::body::Incoming>| {
                let running = this.prepare(&mut request);
                let mut warp_service = warp_service.clone();
                async move {
                    let response = tower_service::Service::call(&mut warp_service, request).await;
                    drop(running);
                    response
                }
            }
        });
        let connection = builder.serve_connection(TokioIo::new(io), service);
        let mut connection = std::pin::pin!(connection);
        let idle = this.listening.idle;
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = this.activity.idle_for(idle) => {
                tracing::debug!(peer = %this.peer, "closing an idle connection");
            }
        }
        connection.as_mut().graceful_shutdown();
        let _ = tokio::time::timeout(CLOSE_GRACE, connection).await;
    }

    /// Hands each request the peer's address and the body budget, and
    /// counts it as activity while it runs.
    fn prepare(&self, request: &mut http::Request<hyper::body::Incoming>) -> idle::Running {
        let peer = self.peer;
        // A proxy that does not say whom it forwards for: nobody known.
        let ip = if self.listening.connections.is_proxy(peer) {
            forwarded_for(request.headers())
        } else {
            Some(peer)
        };
        if let Some(ip) = ip {
            request.extensions_mut().insert(PeerIp(ip));
        }
        request
            .extensions_mut()
            .insert(self.listening.bodies.clone());
        self.activity.request_started()
    }
}

/// The last hop a proxy names in `X-Forwarded-For`: the address that
/// connected to the proxy (earlier hops are the client's word).
fn forwarded_for(headers: &http::HeaderMap) -> Option<IpAddr> {
    let value = headers.get_all("x-forwarded-for").iter().next_back()?;
    value.to_str().ok()?.rsplit(',').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests;
