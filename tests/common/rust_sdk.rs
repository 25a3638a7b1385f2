//! A real Matrix client library, matrix-rust-sdk (matrix-sdk-ui, the code
//! inside Element X): the program in `tests/clients/rust-sdk/`, built once
//! by cargo under the cargo target dir at the versions its Cargo.lock pins.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::Mutex,
    time::Duration,
};

static BUILD: Mutex<()> = Mutex::new(());

/// The client program, built the first time (~10 min on 2 cores from a cold
/// cargo cache); later builds find it up to date.
fn built() -> PathBuf {
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/rust-sdk/Cargo.toml");
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rust-sdk");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    super::synapse::run(
        Command::new(cargo)
            .args(["build", "--locked", "--quiet", "--manifest-path"])
            .arg(&manifest)
            .arg("--target-dir")
            .arg(&target),
    );
    target.join("debug/hearth-rust-sdk-client")
}

/// Runs the client with `args`: its stdout when it exits successfully within
/// `limit`, else what it printed.
pub fn run_client(args: &[String], limit: Duration) -> Result<String, String> {
    let mut command = Command::new(built());
    command.args(args).env("RUST_LOG", "warn");
    super::script::run(command, "matrix-rust-sdk client", limit)
}
