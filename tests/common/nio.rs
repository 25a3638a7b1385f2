//! A real Matrix client library, matrix-nio from PyPI, installed once into
//! a virtualenv under the cargo target dir and run on scripts in
//! `tests/clients/`.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::Mutex,
    time::Duration,
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
    let mut command = Command::new(python());
    command.arg(&path).args(args);
    super::script::run(command, script, limit)
}
