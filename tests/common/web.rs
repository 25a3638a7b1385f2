//! A real HTTPS server (test CA certificate) on a loopback address, serving
//! canned responses per path and counting hits: the `.well-known` host of
//! discovery tests, on port 443 of its own 127.0.0.x address.

use std::{
    collections::HashMap,
    convert::Infallible,
    net::SocketAddr,
    sync::{
        atomic::{AtomicU8, AtomicUsize, Ordering},
        Arc, Mutex,
    },
};

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;

use super::TestCa;

#[derive(Clone)]
pub struct Canned {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Canned {
    pub fn json(body: &str) -> Self {
        Self {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    pub fn redirect(location: &str) -> Self {
        Self {
            status: 302,
            headers: vec![("location".into(), location.into())],
            body: Vec::new(),
        }
    }

    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

type Routes = Arc<Mutex<HashMap<String, Canned>>>;

pub struct TestWeb {
    pub addr: SocketAddr,
    routes: Routes,
    hits: Arc<AtomicUsize>,
    hosts: Arc<Mutex<Vec<String>>>,
}

static NEXT_HOST: AtomicU8 = AtomicU8::new(10);

/// A loopback address no other test in this process uses.
pub fn fresh_loopback_ip() -> std::net::IpAddr {
    let n = NEXT_HOST.fetch_add(1, Ordering::SeqCst);
    std::net::IpAddr::from([127, 0, (std::process::id() % 200) as u8 + 1, n])
}

impl TestWeb {
    /// Serves HTTPS on port 443 of a fresh loopback address.
    pub fn start(ca: &TestCa) -> Self {
        let addr = SocketAddr::new(fresh_loopback_ip(), 443);
        let listener = std::net::TcpListener::bind(addr).expect("bind :443 (tests run as root)");
        listener.set_nonblocking(true).expect("nonblocking");
        let tls = super::tls_acceptor(ca);
        let routes: Routes = Arc::default();
        let hits = Arc::new(AtomicUsize::new(0));
        let hosts: Arc<Mutex<Vec<String>>> = Arc::default();
        let (r, h, seen) = (routes.clone(), hits.clone(), hosts.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let (tls, routes, hits, seen) =
                        (tls.clone(), r.clone(), h.clone(), seen.clone());
                    tokio::spawn(async move {
                        let Ok(stream) = tls.accept(stream).await else {
                            return;
                        };
                        let service = hyper::service::service_fn(
                            move |req: http::Request<hyper::body::Incoming>| {
                                hits.fetch_add(1, Ordering::SeqCst);
                                let host = req
                                    .headers()
                                    .get("host")
                                    .and_then(|h| h.to_str().ok())
                                    .unwrap_or("")
                                    .to_owned();
                                seen.lock().expect("hosts").push(host);
                                let canned = routes
                                    .lock()
                                    .expect("routes")
                                    .get(req.uri().path())
                                    .cloned();
                                async move { Ok::<_, Infallible>(respond(canned)) }
                            },
                        );
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        Self {
            addr,
            routes,
            hits,
            hosts,
        }
    }

    pub fn set(&self, path: &str, canned: Canned) {
        self.routes
            .lock()
            .expect("routes")
            .insert(path.to_owned(), canned);
    }

    /// The `Host` header of every request so far.
    pub fn hosts(&self) -> Vec<String> {
        self.hosts.lock().expect("hosts").clone()
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn respond(canned: Option<Canned>) -> http::Response<Full<Bytes>> {
    let canned = canned.unwrap_or(Canned::status(404));
    let mut builder = http::Response::builder().status(canned.status);
    for (name, value) in &canned.headers {
        builder = builder.header(name, value);
    }
    builder
        .body(Full::new(Bytes::from(canned.body)))
        .expect("response")
}
