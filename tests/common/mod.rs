//! The shared test harness: a test certificate authority, real `hearth`
//! processes on loopback ports with temporary data directories, and a small
//! HTTP(S) client. Everything is cleaned up when dropped.

#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod bridge;
pub mod client;
pub mod dns;
pub mod gateway;
pub mod http;
pub mod identity;
pub mod js;
pub mod nio;
pub mod presigned;
pub mod proc;
pub mod rooms;
pub mod rust_sdk;
pub mod script;
pub mod signing;
pub mod synapse;
pub mod web;

use std::{
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tempfile::TempDir;

/// A certificate authority made for one test run, with a leaf certificate
/// for 127.0.0.1 that every test server presents.
pub struct TestCa {
    dir: TempDir,
}

impl TestCa {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // Distinct subject names: OpenSSL (Synapse) treats a leaf whose subject
        // equals its issuer's as self-signed and refuses it.
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "hearth test CA");
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA cert");
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate().expect("leaf key");
        // Discovery tests use names under hearth.test; anything else (e.g.
        // *.example) must not match.
        let names = ["127.0.0.1", "localhost", "*.hearth.test"]
            .map(str::to_owned)
            .to_vec();
        let mut leaf_params = CertificateParams::new(names).expect("leaf params");
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "hearth test server");
        let leaf = leaf_params
            .signed_by(&leaf_key, &issuer)
            .expect("leaf cert");
        std::fs::write(dir.path().join("ca.pem"), ca_cert.pem()).expect("write CA");
        std::fs::write(dir.path().join("cert.pem"), leaf.pem()).expect("write cert");
        std::fs::write(dir.path().join("key.pem"), leaf_key.serialize_pem()).expect("write key");
        Self { dir }
    }

    pub fn ca_pem(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn cert_pem(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    pub fn key_pem(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }
}

/// A TLS acceptor presenting the test CA's leaf certificate (HTTP/1.1 only).
pub fn tls_acceptor(ca: &TestCa) -> tokio_rustls::TlsAcceptor {
    let mut config =
        hearth::net::tls::server_config(&ca.cert_pem(), &ca.key_pem()).expect("server TLS");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config))
}

/// A loopback port no other server of this test process has used: a
/// killed server's port stays reserved for its restart.
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
}

/// A running `hearth` process with its own data directory and ports.
pub struct Hearth {
    pub server_name: String,
    pub federation: SocketAddr,
    pub client: SocketAddr,
    dir: TempDir,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

impl Hearth {
    /// Starts a server named `127.0.0.1:PORT` serving TLS from `ca`'s leaf
    /// certificate, trusting `ca`, allowed to reach loopback.
    pub fn start(ca: &TestCa) -> Self {
        Self::start_with(ca, &[])
    }

    /// Same, with extra `HEARTH_*` settings.
    pub fn start_with(ca: &TestCa, extra: &[(&str, &str)]) -> Self {
        let federation: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        Self::start_at(ca, &federation.to_string(), federation, extra)
    }

    /// A server called `server_name` whose federation listener is `federation`.
    pub fn start_at(
        ca: &TestCa,
        server_name: &str,
        federation: SocketAddr,
        extra: &[(&str, &str)],
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let client: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let server_name = server_name.to_owned();
        let path = |p: PathBuf| p.to_string_lossy().into_owned();
        let mut env = vec![
            ("HEARTH_SERVER_NAME".to_owned(), server_name.clone()),
            ("HEARTH_DATA_DIR".to_owned(), path(dir.path().join("data"))),
            (
                "HEARTH_LISTEN__FEDERATION".to_owned(),
                federation.to_string(),
            ),
            ("HEARTH_LISTEN__CLIENT".to_owned(), client.to_string()),
            ("HEARTH_TLS__CERT".to_owned(), path(ca.cert_pem())),
            ("HEARTH_TLS__KEY".to_owned(), path(ca.key_pem())),
            (
                "HEARTH_FEDERATION__EXTRA_CA_FILE".to_owned(),
                path(ca.ca_pem()),
            ),
            (
                "HEARTH_FEDERATION__ALLOW_PRIVATE_ADDRESSES".to_owned(),
                "true".to_owned(),
            ),
            (
                "HEARTH_FEDERATION__REQUEST_TIMEOUT_SECS".to_owned(),
                "10".to_owned(),
            ),
        ];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut hearth = Self {
            server_name,
            federation,
            client,
            dir,
            env,
            child: None,
        };
        hearth.spawn();
        hearth
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs the `hearth` binary with this server's settings and `args`;
    /// `HEARTH_TEST_BINARY` names another build (to compare two in a bench).
    pub fn command(&self, args: &[&str]) -> Command {
        let binary = std::env::var_os("HEARTH_TEST_BINARY")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_hearth").into());
        let mut command = Command::new(binary);
        command
            .args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .envs(self.env.iter().cloned())
            // HEARTH_TEST_LOG raises the level when a test needs looking into.
            .env(
                "HEARTH_LOG",
                std::env::var("HEARTH_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            );
        command
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("hearth.log")).expect("log file");
        let child = self
            .command(&[])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start hearth");
        self.child = Some(child);
        self.wait_until_listening();
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("hearth exited with {status}: {}", self.log());
            }
            if TcpStream::connect(self.federation).is_ok()
                && TcpStream::connect(self.client).is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("hearth did not start listening: {}", self.log());
    }

    /// The running process's ID.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("hearth.log")).unwrap_or_default()
    }

    /// Kills the process the hard way (SIGKILL): nothing gets to flush.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs `hearth <args>` for this server until it succeeds (just after
    /// a kill, sled may still hold the lock for a moment); its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let out = self.command(args).output().expect("run hearth");
            if out.status.success() {
                return String::from_utf8_lossy(&out.stdout).into_owned();
            }
            assert!(
                Instant::now() < deadline,
                "{args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `hearth federation status --json`, running or not.
    pub fn federation_status(&self) -> serde_json::Value {
        let out = self.cli(&["federation", "status", "--json"]);
        serde_json::from_str(&out).expect("JSON status")
    }

    /// Freezes the process (SIGSTOP): its sockets still take connections,
    /// but nothing answers until [`Self::thaw`].
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.pid().expect("running").to_string();
        let status = Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// Starts it again on the same ports and data directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.data_dir().join("admin.token"))
            .expect("admin token")
            .trim()
            .to_owned()
    }

    /// POSTs to the admin API and returns (status, JSON body).
    pub async fn admin(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let token = self.admin_token();
        http::request(
            http::Target::Plain(self.client),
            "POST",
            &format!("/_hearth/admin/v1/{path}"),
            &[("authorization", &format!("Bearer {token}"))],
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    /// GETs from the admin API and returns (status, JSON body).
    pub async fn admin_get(&self, path: &str) -> (u16, serde_json::Value) {
        let token = self.admin_token();
        http::request(
            http::Target::Plain(self.client),
            "GET",
            &format!("/_hearth/admin/v1/{path}"),
            &[("authorization", &format!("Bearer {token}"))],
            None,
        )
        .await
    }

    /// An admin read of `path` once `ready` holds for it (EDUs and other
    /// servers' answers are taken in after the request that brought them).
    pub async fn admin_get_when(
        &self,
        path: &str,
        ready: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let mut last = serde_json::Value::Null;
        for _ in 0..100 {
            let (status, body) = self.admin_get(path).await;
            if status == 200 && ready(&body) {
                return body;
            }
            last = body;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{path} never got there: {last}\n{}", self.log());
    }

    /// `GET /metrics` on the client listener: the text, or `None` on a 404.
    pub async fn metrics(&self) -> Option<String> {
        let (status, body) = http::request_raw(
            http::Target::Plain(self.client),
            "GET",
            "/metrics",
            &[],
            None,
        )
        .await;
        match status {
            200 => Some(String::from_utf8_lossy(&body).into_owned()),
            404 => None,
            other => panic!("/metrics answered {other}"),
        }
    }

    /// The value of an unlabelled sample on `/metrics` (0 when absent).
    pub async fn metric(&self, name: &str) -> u64 {
        let text = self.metrics().await.expect("metrics are enabled");
        sample(&text, name)
    }

    /// This server's published `/_matrix/key/v2/server` response.
    pub async fn server_keys(&self, ca: &TestCa) -> serde_json::Value {
        let (status, keys) = self
            .federation_request(ca, "GET", "/_matrix/key/v2/server", &[], None)
            .await;
        assert_eq!(status, 200, "{keys}");
        keys
    }

    /// Sends a request to this server's federation listener over TLS.
    pub async fn federation_request(
        &self,
        ca: &TestCa,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> (u16, serde_json::Value) {
        http::request(
            http::Target::Tls(self.federation, ca.ca_pem()),
            method,
            uri,
            headers,
            body,
        )
        .await
    }
}

impl Drop for Hearth {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The value of an unlabelled sample in a `/metrics` text (0 when absent).
pub fn sample(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

pub fn assert_file_exists(path: &Path) {
    assert!(path.exists(), "{} should exist", path.display());
}

/// The one key id in a key response's `verify_keys`.
pub fn current_key_id(keys: &serde_json::Value) -> String {
    keys["verify_keys"]
        .as_object()
        .and_then(|k| k.keys().next())
        .expect("a verify key")
        .clone()
}

/// Checks with ruma's verifier (independent of hearth's) that `signer`
/// signed `object` with one of the keys in `verify_keys` (a key response's
/// `verify_keys` object). Other signers' signatures are ignored.
pub fn assert_signed_by(object: &serde_json::Value, signer: &str, verify_keys: &serde_json::Value) {
    use ruma::serde::{base64::Standard, Base64};
    let keys: std::collections::BTreeMap<String, Base64> = verify_keys
        .as_object()
        .expect("verify_keys object")
        .iter()
        .map(|(id, k)| {
            (
                id.clone(),
                Base64::<Standard, Vec<u8>>::parse(k["key"].as_str().expect("key")).expect("b64"),
            )
        })
        .collect();
    let mut object: ruma::CanonicalJsonObject =
        serde_json::from_value(object.clone()).expect("JSON object");
    match object.get_mut("signatures") {
        Some(ruma::CanonicalJsonValue::Object(signatures)) => {
            assert!(signatures.contains_key(signer), "no signature by {signer}");
            signatures.retain(|name, _| name == signer);
        }
        _ => panic!("no signatures"),
    }
    let map = std::collections::BTreeMap::from([(signer.to_owned(), keys)]);
    ruma::signatures::verify_json(&map, &object)
        .unwrap_or_else(|e| panic!("{signer}'s signature: {e}"));
}
