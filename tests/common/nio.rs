//! A real Matrix client library, matrix-nio from PyPI, installed once into
//! a virtualenv under the cargo target dir and run on scripts in
//! `tests/clients/`.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

static INSTALL: Mutex<()> = Mutex::new(());

fn python() -> PathBuf {
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("nio-venv");
    let marker = venv.join("hearth-installed");
    if !marker.exists() {
        super::synapse::run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
        super::synapse::run(Command::new(venv.join("bin/pip")).args([
            "install",
            "-q",
            "matrix-nio",
        ]));
        std::fs::write(&marker, b"ok").expect("marker");
    }
    venv.join("bin/python")
}

/// Runs `tests/clients/{script}` with `args`: its stdout when it exits
/// successfully within `limit`, else what it printed.
pub fn run_script(script: &str, args: &[String], limit: Duration) -> Result<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(script);
    let dir = tempfile::tempdir().expect("temp dir");
    let stdout_path = dir.path().join("stdout");
    let stderr_path = dir.path().join("stderr");
    let mut child = Command::new(python())
        .arg(&path)
        .args(args)
        .stdout(std::fs::File::create(&stdout_path).expect("stdout"))
        .stderr(std::fs::File::create(&stderr_path).expect("stderr"))
        .stdin(Stdio::null())
        .spawn()
        .expect("start python");
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
