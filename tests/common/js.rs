//! A real Matrix client library, matrix-js-sdk (the library inside Element
//! Web) with its Rust crypto, from the npm registry: installed once under
//! the cargo target dir at the versions `tests/clients/package.json` pins,
//! and run under Node.js on scripts in `tests/clients/`.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::Mutex,
    time::Duration,
};

static INSTALL: Mutex<()> = Mutex::new(());

/// The install directory, with `script` copied beside `node_modules` (Node
/// resolves a module's imports from where the module is, not from the
/// working directory).
fn prepared(script: &str) -> PathBuf {
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let clients = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("js-clients");
    let manifest = std::fs::read(clients.join("package.json")).expect("package.json");
    let marker = dir.join("hearth-installed");
    if std::fs::read(&marker).ok().as_ref() != Some(&manifest) {
        std::fs::create_dir_all(&dir).expect("js-clients dir");
        std::fs::write(dir.join("package.json"), &manifest).expect("package.json");
        super::synapse::run(Command::new("npm").current_dir(&dir).args([
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
        ]));
        std::fs::write(&marker, &manifest).expect("marker");
    }
    let source = std::fs::read(clients.join(script)).expect("script");
    if std::fs::read(dir.join(script)).ok() != Some(source.clone()) {
        std::fs::write(dir.join(script), source).expect("copy script");
    }
    dir
}

/// Runs `tests/clients/{script}` under Node.js with `args`: its stdout when
/// it exits successfully within `limit`, else what it printed.
pub fn run_script(script: &str, args: &[String], limit: Duration) -> Result<String, String> {
    let dir = prepared(script);
    let mut command = Command::new("node");
    command.current_dir(&dir).arg(dir.join(script)).args(args);
    super::script::run(command, script, limit)
}
