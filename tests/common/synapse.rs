//! A real Synapse (PyPI `matrix-synapse`) on loopback as the interop peer:
//! installed once into a virtualenv under the cargo target dir, federating
//! over TLS with the test CA's certificate, server name `127.0.0.1:PORT`.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

use serde_json::{json, Value};
use tempfile::TempDir;

use super::{free_port, http, TestCa};

static INSTALL: Mutex<()> = Mutex::new(());

/// The virtualenv with Synapse, created on first use.
fn venv() -> PathBuf {
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("synapse-venv");
    let marker = venv.join("hearth-installed");
    if !marker.exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
        run(Command::new(venv.join("bin/pip")).args(["install", "-q", "matrix-synapse"]));
        std::fs::write(&marker, b"ok").expect("marker");
    }
    venv
}

pub fn run(command: &mut Command) {
    let out = command.output().expect("run installer");
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub struct Synapse {
    pub server_name: String,
    pub federation: SocketAddr,
    pub client: SocketAddr,
    dir: TempDir,
    child: Child,
}

impl Synapse {
    pub fn start(ca: &TestCa) -> Self {
        let python = venv().join("bin/python");
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        let federation: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let client: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let server_name = federation.to_string();
        run(Command::new(&python)
            .current_dir(d)
            .args([
                "-m",
                "synapse.app.homeserver",
                "--server-name",
                &server_name,
                "--config-path",
            ])
            .arg(d.join("base.yaml"))
            .args(["--generate-config", "--report-stats=no", "--data-directory"])
            .arg(d));
        let overrides = format!(
            r#"
listeners:
  - {{port: {fp}, bind_addresses: ['127.0.0.1'], type: http, tls: true, resources: [{{names: [federation, keys], compress: false}}]}}
  - {{port: {cp}, bind_addresses: ['127.0.0.1'], type: http, tls: false, x_forwarded: false, resources: [{{names: [client], compress: false}}]}}
tls_certificate_path: {cert}
tls_private_key_path: {key}
federation_custom_ca_list: [{ca}]
federation_verify_certificates: true
ip_range_whitelist: ['127.0.0.1', '::1']
# IP-literal server names are checked against this list alone: empty it for loopback peers
federation_ip_range_blacklist: []
trusted_key_servers: []
suppress_key_server_warning: true
enable_registration: true
enable_registration_without_verification: true
report_stats: false
database: {{name: sqlite3, args: {{database: {db}}}}}
rc_message: {{per_second: 1000, burst_count: 1000}}
rc_registration: {{per_second: 1000, burst_count: 1000}}
rc_login: {{address: {{per_second: 1000, burst_count: 1000}}, account: {{per_second: 1000, burst_count: 1000}}, failed_attempts: {{per_second: 1000, burst_count: 1000}}}}
rc_joins: {{local: {{per_second: 1000, burst_count: 1000}}, remote: {{per_second: 1000, burst_count: 1000}}}}
rc_federation: {{window_size: 1000, sleep_limit: 1000, sleep_delay: 0, reject_limit: 1000, concurrent: 100}}
"#,
            fp = federation.port(),
            cp = client.port(),
            cert = ca.cert_pem().display(),
            key = ca.key_pem().display(),
            ca = ca.ca_pem().display(),
            db = d.join("homeserver.db").display(),
        );
        std::fs::write(d.join("over.yaml"), overrides).expect("write overrides");
        let log = std::fs::File::create(d.join("stdout.log")).expect("log");
        let child = Command::new(&python)
            .current_dir(d)
            .args(["-m", "synapse.app.homeserver", "-c"])
            .arg(d.join("base.yaml"))
            .arg("-c")
            .arg(d.join("over.yaml"))
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("start synapse");
        let mut synapse = Self {
            server_name,
            federation,
            client,
            dir,
            child,
        };
        synapse.wait_until_up();
        synapse
    }

    fn wait_until_up(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("synapse exited with {status}: {}", self.log());
            }
            if std::net::TcpStream::connect(self.client).is_ok()
                && std::net::TcpStream::connect(self.federation).is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("synapse did not start: {}", self.log());
    }

    pub fn log(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        let log = read("homeserver.log");
        let tail: Vec<&str> = log
            .lines()
            .rev()
            .filter(|line| !line.contains("background_updates"))
            .take(60)
            .collect();
        format!(
            "{}\n{}",
            read("stdout.log"),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    }

    /// A client-API call; returns (status, JSON).
    pub async fn client_api(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("authorization", a.as_str())).collect();
        http::request(
            http::Target::Plain(self.client),
            method,
            path,
            &headers,
            body.map(|b| b.to_string().into_bytes()),
        )
        .await
    }

    /// Creates a room as the user of `token`; its ID.
    pub async fn create_room(&self, token: &str, body: Value) -> String {
        let (status, reply) = self
            .client_api(
                "POST",
                "/_matrix/client/v3/createRoom",
                Some(token),
                Some(body),
            )
            .await;
        assert_eq!(status, 200, "createRoom: {reply}");
        reply["room_id"].as_str().expect("room_id").to_owned()
    }

    /// Sends a text message as the user of `token`; its event ID.
    pub async fn say(&self, token: &str, room: &str, body: &str, txn: &str) -> String {
        let path = format!(
            "/_matrix/client/v3/rooms/{}/send/m.room.message/{txn}",
            super::rooms::encode(room)
        );
        let body = json!({"msgtype": "m.text", "body": body});
        let (status, reply) = self.client_api("PUT", &path, Some(token), Some(body)).await;
        assert_eq!(status, 200, "send: {reply}");
        reply["event_id"].as_str().expect("event_id").to_owned()
    }

    /// Registers `localpart` and returns its access token.
    pub async fn register(&self, localpart: &str) -> String {
        let body = json!({"username": localpart, "password": "correct horse battery", "auth": {"type": "m.login.dummy"}});
        let (status, reply) = self
            .client_api("POST", "/_matrix/client/v3/register", None, Some(body))
            .await;
        assert_eq!(status, 200, "register: {reply}");
        reply["access_token"].as_str().expect("token").to_owned()
    }

    pub fn user_id(&self, localpart: &str) -> String {
        format!("@{localpart}:{}", self.server_name)
    }
}

impl Drop for Synapse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
