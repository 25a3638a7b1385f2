use std::{io::Write, path::Path};

use rand::{distributions::Alphanumeric, Rng};

/// The admin token file, inside `data_dir`: whoever can read `data/`
/// already owns the server.
pub const TOKEN_FILE: &str = "admin.token";

pub fn read_token(data_dir: &Path) -> Result<String, String> {
    let path = data_dir.join(TOKEN_FILE);
    std::fs::read_to_string(&path)
        .map(|t| t.trim().to_owned())
        .map_err(|e| format!("cannot read admin token {}: {e}", path.display()))
}

/// Creates the token on first start (mode 0600), keeps it afterwards.
pub fn load_or_create_token(data_dir: &Path) -> Result<String, String> {
    if let Ok(token) = read_token(data_dir) {
        if !token.is_empty() {
            return Ok(token);
        }
    }
    let token: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(48)
        .map(char::from)
        .collect();
    let path = data_dir.join(TOKEN_FILE);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    file.write_all(token.as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(token)
}

/// Compares without an early exit, so timing does not reveal the token.
pub fn tokens_match(given: &str, expected: &str) -> bool {
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}
