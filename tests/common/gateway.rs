//! A push gateway on loopback (plain HTTP, as a LAN gateway may be): keeps
//! every notification POSTed to `/_matrix/push/v1/notify` and answers with
//! the pushkeys it was told to reject. It can be stopped and started again
//! on the same port, to stand for a gateway that is down.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

#[derive(Default)]
struct Shared {
    received: Vec<Value>,
    rejected: Vec<String>,
}

pub struct Gateway {
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Gateway {
    pub async fn start() -> Self {
        let addr = SocketAddr::from(([127, 0, 0, 1], super::free_port()));
        let mut gateway = Self {
            addr,
            shared: Arc::default(),
            task: None,
        };
        gateway.resume().await;
        gateway
    }

    /// The URL pushers name.
    pub fn url(&self) -> String {
        format!("http://{}/_matrix/push/v1/notify", self.addr)
    }

    /// Stops answering (connections are refused).
    pub fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn resume(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .expect("bind the gateway");
        let shared = self.shared.clone();
        self.task = Some(tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: http::Request<hyper::body::Incoming>| {
                            let shared = shared.clone();
                            async move {
                                let path_ok = req.uri().path() == "/_matrix/push/v1/notify";
                                let body = req.into_body().collect().await.map(|b| b.to_bytes());
                                let body: Value = body
                                    .ok()
                                    .and_then(|b| serde_json::from_slice(&b).ok())
                                    .unwrap_or(Value::Null);
                                let mut shared = shared.lock().expect("gateway");
                                if path_ok {
                                    shared.received.push(body);
                                }
                                let answer = json!({ "rejected": shared.rejected });
                                let response = http::Response::builder()
                                    .status(if path_ok { 200 } else { 404 })
                                    .header("content-type", "application/json")
                                    .body(Full::new(Bytes::from(answer.to_string())))
                                    .expect("response");
                                Ok::<_, Infallible>(response)
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }));
    }

    /// Answers that `pushkey` is rejected from now on.
    pub fn reject(&self, pushkey: &str) {
        self.shared
            .lock()
            .expect("gateway")
            .rejected
            .push(pushkey.to_owned());
    }

    /// The notifications received so far.
    pub fn received(&self) -> Vec<Value> {
        self.shared.lock().expect("gateway").received.clone()
    }

    /// Waits until at least `count` notifications came.
    pub async fn wait_for(&self, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {count} notifications: {received:?}",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop();
    }
}
