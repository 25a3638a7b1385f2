//! Runs a client library's script from `tests/clients/` as a child process
//! with a time limit: matrix-nio under Python, matrix-js-sdk under Node.js;
//! and the Python virtualenvs those libraries are installed into.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

static INSTALL: Mutex<()> = Mutex::new(());

/// The Python of virtualenv `name` under the cargo target dir, with
/// `package` (from PyPI) installed into it the first time.
pub fn python_with(name: &str, package: &str) -> PathBuf {
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let marker = venv.join("hearth-installed");
    if !marker.exists() {
        super::synapse::run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
        super::synapse::run(Command::new(venv.join("bin/pip")).args(["install", "-q", package]));
        std::fs::write(&marker, b"ok").expect("marker");
    }
    venv.join("bin/python")
}

/// Runs `command` (a script with its arguments): its stdout when it exits
/// successfully within `limit`, else everything it printed.
pub fn run(mut command: Command, script: &str, limit: Duration) -> Result<String, String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let stdout_path = dir.path().join("stdout");
    let stderr_path = dir.path().join("stderr");
    let mut child = command
        .stdout(std::fs::File::create(&stdout_path).expect("stdout"))
        .stderr(std::fs::File::create(&stderr_path).expect("stderr"))
        .stdin(Stdio::null())
        .spawn()
        .expect("start the client script");
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    match status {
        Some(s) if s.success() => Ok(stdout),
        Some(s) => Err(format!("{script} failed ({s}):\n{stdout}\n{stderr}")),
        None => Err(format!(
            "{script} took longer than {limit:?}:\n{stdout}\n{stderr}"
        )),
    }
}
