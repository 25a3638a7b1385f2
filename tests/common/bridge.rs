//! A bridge for tests: `tests/clients/bridge.py`, an application service
//! built on mautrix-python (PyPI, installed once into a virtualenv under
//! the cargo target dir), running beside a hearth; and its registration.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;
use tempfile::TempDir;

fn python() -> PathBuf {
    super::script::python_with("mautrix-venv", "mautrix==0.21.1")
}

pub const AS_TOKEN: &str = "as_token_of_the_test_bridge";
pub const HS_TOKEN: &str = "hs_token_of_the_test_bridge";

/// The bridge's registration (users `@bridge_*`, aliases `#bridge_*`,
/// both exclusive; ephemeral events; its users' devices in it, as an
/// encrypted mautrix bridge registers: MSC3202, MSC4190; not
/// rate-limited) in `dir`.
pub fn registration(dir: &Path, port: u16) -> PathBuf {
    let yaml = format!(
        "id: bridge\nurl: http://127.0.0.1:{port}\nas_token: {AS_TOKEN}\nhs_token: {HS_TOKEN}\n\
         sender_localpart: bridgebot\nrate_limited: false\nreceive_ephemeral: true\n\
         de.sorunome.msc2409.push_ephemeral: true\norg.matrix.msc3202: true\n\
         io.element.msc4190: true\n\
         protocols: [testnet]\nnamespaces:\n  users:\n  - exclusive: true\n    regex: '@bridge_.*'\n  \
         aliases:\n  - exclusive: true\n    regex: '#bridge_.*'\n"
    );
    let path = dir.join("bridge.yaml");
    std::fs::write(&path, yaml).expect("registration");
    path
}

/// A running bridge process; killed when dropped.
pub struct Bridge {
    child: Option<Child>,
    dir: TempDir,
    pub port: u16,
    hearth_url: String,
    domain: String,
}

impl Bridge {
    /// Starts the bridge for the hearth at `hearth_url` named `domain`
    /// on `port`; returns once it listens (and, with `ping`, pinged itself
    /// through hearth).
    pub fn start(hearth_url: &str, domain: &str, port: u16, ping: bool) -> Self {
        let mut bridge = Self {
            child: None,
            dir: tempfile::tempdir().expect("bridge dir"),
            port,
            hearth_url: hearth_url.to_owned(),
            domain: domain.to_owned(),
        };
        bridge.spawn(ping);
        bridge
    }

    fn spawn(&mut self, ping: bool) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/bridge.py");
        let out = self.dir.path().join("stdout");
        let mut command = Command::new(python());
        command
            .arg(script)
            .args([&self.hearth_url, &self.domain, &self.port.to_string()])
            .args([AS_TOKEN, HS_TOKEN])
            .arg(self.log_path())
            .args(ping.then_some("ping"))
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).expect("stdout"))
            .stderr(std::fs::File::create(self.dir.path().join("stderr")).expect("stderr"));
        self.child = Some(command.spawn().expect("start the bridge"));
        let wanted = if ping { "ping " } else { "ready" };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !std::fs::read_to_string(&out)
            .unwrap_or_default()
            .contains(wanted)
        {
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "the bridge did not start: {}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What the bridge printed (stdout, then stderr).
    pub fn output(&self) -> String {
        let read = |name| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!("{}\n{}", read("stdout"), read("stderr"))
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("transactions.jsonl")
    }

    /// Every transaction the bridge handled, in order.
    pub fn transactions(&self) -> Vec<Value> {
        std::fs::read_to_string(self.log_path())
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("a logged transaction"))
            .collect()
    }

    /// Every event delivered, in order, with its transaction ID.
    pub fn events(&self) -> Vec<(String, Value)> {
        self.transactions()
            .into_iter()
            .flat_map(|txn| {
                let id = txn["txn"].as_str().unwrap_or("").to_owned();
                let events = txn["events"].as_array().cloned().unwrap_or_default();
                events.into_iter().map(move |e| (id.clone(), e))
            })
            .collect()
    }

    /// Waits until `test` holds of the delivered events.
    pub fn wait_for(&self, what: &str, test: impl Fn(&[(String, Value)]) -> bool) {
        self.wait_until(what, || test(&self.events()).then_some(()));
    }

    /// Waits for a transaction for which `test` holds; returns it.
    pub fn wait_for_transaction(&self, what: &str, test: impl Fn(&Value) -> bool) -> Value {
        self.wait_until(what, || self.transactions().into_iter().find(|t| test(t)))
    }

    /// Polls `found` for a minute, failing with what the bridge saw.
    fn wait_until<T>(&self, what: &str, found: impl Fn() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(found) = found() {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "the bridge never saw {what}: {:#?}\n{}",
                self.transactions(),
                self.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again (same state directory and log), pinging on start
    /// as bridges do.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn(true);
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.stop();
    }
}
