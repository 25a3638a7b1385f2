//! `data/identity.json`: whose data directory this is. It names the
//! server and holds our signing keys, written before the database holds
//! them (to a temporary file, synced, renamed, the directory synced; mode
//! 0600), so that a database that opens empty or damaged, or a directory
//! started under another name, is refused instead of silently becoming a
//! new server with a new key (other servers would take it for an
//! impostor, and nothing signed before could be vouched for again).

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use super::OwnSigningKey;

const FILE: &str = "identity.json";
/// The database's directory inside `data/`.
const DATABASE: &str = "db";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Identity {
    pub server_name: String,
    /// Every signing key we have had, the current one with no `expired_ts`.
    pub keys: Vec<OwnSigningKey>,
}

impl Identity {
    /// Refuses a directory that is another server's.
    pub fn belongs_to(&self, data_dir: &Path, server_name: &str) -> Result<(), String> {
        if self.server_name == server_name {
            return Ok(());
        }
        Err(format!(
            "{} belongs to {}, but server_name is {server_name}: start it with \
             server_name = \"{}\", or give {server_name} its own data_dir",
            data_dir.display(),
            self.server_name,
            self.server_name
        ))
    }
}

fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE)
}

pub fn read(data_dir: &Path) -> Result<Option<Identity>, String> {
    let path = path(data_dir);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            format!(
                "{} is damaged ({e}); restore it from a backup",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Replaces the file whole: a crash leaves the old one or the new one.
pub fn write(data_dir: &Path, identity: &Identity) -> Result<(), String> {
    let path = path(data_dir);
    let temporary = data_dir.join(format!("{FILE}.new"));
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let json = serde_json::to_vec_pretty(identity).map_err(|e| e.to_string())?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temporary).map_err(fail)?;
    file.write_all(&json).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    std::fs::rename(&temporary, &path).map_err(fail)?;
    std::fs::File::open(data_dir)
        .and_then(|dir| dir.sync_all())
        .map_err(fail)
}

/// Checks, before the database is opened (and possibly created), that
/// `data_dir` is `server_name`'s and still has its database.
pub fn precheck(data_dir: &Path, server_name: &str) -> Result<(), String> {
    let Some(identity) = read(data_dir)? else {
        return Ok(());
    };
    identity.belongs_to(data_dir, server_name)?;
    let database = data_dir.join(DATABASE);
    let empty = std::fs::read_dir(&database).map_or(true, |mut entries| entries.next().is_none());
    if empty {
        return Err(missing_database(data_dir, &identity.server_name));
    }
    Ok(())
}

/// The refusal for a database that is gone or opened empty.
pub fn missing_database(data_dir: &Path, server_name: &str) -> String {
    format!(
        "the database in {} is missing or empty, but {} says this is {server_name}'s data: \
         restore {} from a backup (hearth will not start as a new server with a new key over it)",
        data_dir.display(),
        path(data_dir).display(),
        data_dir.display()
    )
}
