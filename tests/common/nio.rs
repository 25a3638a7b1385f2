//! A real Matrix client library, matrix-nio from PyPI, installed once into
//! a virtualenv under the cargo target dir and run on scripts in
//! `tests/clients/`.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

fn python() -> PathBuf {
    super::script::python_with("nio-venv", "matrix-nio")
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
