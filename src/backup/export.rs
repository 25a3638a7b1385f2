//! `hearth export FILE` / `hearth import FILE`: the whole server in one
//! text file that no storage engine owns, one JSON object per line:
//!
//! ```text
//! {"hearth_export":1,"server_name":"example.org","exported_at_ms":…}
//! {"file":"identity.json","mode":384,"base64":"…"}        each file of data/ but the database
//! {"tree":"events","key":"…","value":"…"}                  each record, trees by name, keys in order
//! {"tree":"timeline","key_b64":"…","value":"…"}           bytes that are not UTF-8 go as base64
//! {"end":true,"files":2,"records":123456}
//! ```
//!
//! A file without its last line was cut short and is refused. Keys and
//! values are hearth's own layouts (documented where each tree is
//! defined), so a future engine loads them as they are.

use std::{
    io::{BufRead, BufWriter, Write},
    path::{Component, Path, PathBuf},
};

use ruma::serde::{base64::Standard, Base64};
use serde::{Deserialize, Serialize};

use super::files;
use crate::store::dump::{self, Loader};

/// The format's version; a newer one is refused by an older hearth.
pub const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Line {
    Header {
        hearth_export: u32,
        server_name: String,
        exported_at_ms: u64,
    },
    File {
        file: String,
        mode: u32,
        base64: Base64<Standard, Vec<u8>>,
    },
    Record {
        tree: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key_b64: Option<Base64<Standard, Vec<u8>>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value_b64: Option<Base64<Standard, Vec<u8>>>,
    },
    End {
        end: bool,
        files: u64,
        records: u64,
    },
}

/// Bytes as text when they are UTF-8, else as base64.
fn as_text(bytes: &[u8]) -> (Option<String>, Option<Base64<Standard, Vec<u8>>>) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (Some(text.to_owned()), None),
        Err(_) => (None, Some(Base64::new(bytes.to_vec()))),
    }
}

fn from_text(text: Option<String>, b64: Option<Base64<Standard, Vec<u8>>>) -> Option<Vec<u8>> {
    text.map(String::into_bytes)
        .or_else(|| b64.map(Base64::into_inner))
}

/// What an export or import moved.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Moved {
    pub files: u64,
    pub records: u64,
}

fn write_line(out: &mut impl Write, line: &Line) -> Result<(), String> {
    serde_json::to_writer(&mut *out, line).map_err(|e| e.to_string())?;
    out.write_all(b"\n").map_err(|e| e.to_string())
}

/// Writes the data directory `from` (no server may be writing it: a
/// stopped server's, or a backup) to `file`, whole or not at all.
pub fn export(from: &Path, server_name: &str, file: &Path) -> Result<Moved, String> {
    let partial = file.with_extension("partial");
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", partial.display());
    let mut out = BufWriter::new(std::fs::File::create(&partial).map_err(fail)?);
    let header = Line::Header {
        hearth_export: VERSION,
        server_name: server_name.to_owned(),
        exported_at_ms: crate::time::now_ms(),
    };
    write_line(&mut out, &header)?;
    let mut files = 0;
    files::each_other(from, &mut |relative, mode, bytes| {
        let file = relative.to_string_lossy().into_owned();
        files += 1;
        write_line(
            &mut out,
            &Line::File {
                file,
                mode,
                base64: Base64::new(bytes),
            },
        )
    })?;
    let records = dump::read_all(from, |tree, key, value| {
        let ((key, key_b64), (value, value_b64)) = (as_text(key), as_text(value));
        let record = Line::Record {
            tree: tree.to_owned(),
            key,
            key_b64,
            value,
            value_b64,
        };
        write_line(&mut out, &record).map_err(crate::store::StoreError::data)
    })
    .map_err(|e| format!("reading the database: {e}"))?;
    write_line(
        &mut out,
        &Line::End {
            end: true,
            files,
            records,
        },
    )?;
    let out = out.into_inner().map_err(|e| fail(e.into_error()))?;
    out.sync_all().map_err(fail)?;
    std::fs::rename(&partial, file).map_err(fail)?;
    Ok(Moved { files, records })
}

/// Loads `file` into `data_dir` (new or empty), whole or not at all; the
/// result starts as a server restored from a backup.
pub fn import(file: &Path, data_dir: &Path, server_name: &str) -> Result<Moved, String> {
    let input = std::fs::File::open(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let partial = files::prepare(data_dir)?;
    let loaded = load(std::io::BufReader::new(input), &partial, server_name);
    let moved = match loaded {
        Ok(moved) => moved,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(format!("{}: {e}", file.display()));
        }
    };
    let marker = serde_json::json!({ "imported_from": file, "at_ms": crate::time::now_ms() });
    files::write_synced(&partial.join(super::MARKER), marker.to_string().as_bytes())?;
    files::finish(&partial, data_dir)?;
    Ok(moved)
}

fn load(input: impl BufRead, into: &Path, server_name: &str) -> Result<Moved, String> {
    let mut lines = input.lines().enumerate();
    let mut next = || -> Result<Option<(usize, Line)>, String> {
        let Some((n, line)) = lines.next() else {
            return Ok(None);
        };
        let line = line.map_err(|e| e.to_string())?;
        let parsed = serde_json::from_str(&line).map_err(|e| format!("line {}: {e}", n + 1))?;
        Ok(Some((n + 1, parsed)))
    };
    match next()? {
        Some((
            _,
            Line::Header {
                hearth_export,
                server_name: name,
                ..
            },
        )) => {
            if hearth_export > VERSION {
                return Err(format!(
                    "written in export format {hearth_export}; this hearth reads up to {VERSION}"
                ));
            }
            if name != server_name {
                return Err(format!(
                    "it is {name}'s export, but server_name is {server_name}"
                ));
            }
        }
        _ => return Err("it does not start with a hearth export header".into()),
    }
    let mut loader = Loader::create(into).map_err(|e| e.to_string())?;
    let mut files = 0;
    loop {
        match next()? {
            Some((n, Line::File { file, mode, base64 })) => {
                write_file(into, &file, mode, base64.as_bytes())
                    .map_err(|e| format!("line {n}: {e}"))?;
                files += 1;
            }
            Some((
                n,
                Line::Record {
                    tree,
                    key,
                    key_b64,
                    value,
                    value_b64,
                },
            )) => {
                let (Some(key), Some(value)) =
                    (from_text(key, key_b64), from_text(value, value_b64))
                else {
                    return Err(format!("line {n}: a record needs a key and a value"));
                };
                loader
                    .insert(&tree, &key, &value)
                    .map_err(|e| format!("line {n}: {e}"))?;
            }
            Some((
                _,
                Line::End {
                    files: want_files,
                    records,
                    ..
                },
            )) => {
                let loaded = loader.finish().map_err(|e| e.to_string())?;
                if (files, loaded) != (want_files, records) {
                    return Err(format!(
                        "it announces {want_files} files and {records} records, but holds {files} and {loaded}"
                    ));
                }
                return Ok(Moved { files, records });
            }
            Some((n, Line::Header { .. })) => return Err(format!("line {n}: a second header")),
            None => return Err("it ends before its last line: the export was cut short".into()),
        }
    }
}

/// Writes one of the data directory's files, only ever inside it.
fn write_file(into: &Path, relative: &str, mode: u32, bytes: &[u8]) -> Result<(), String> {
    let relative = PathBuf::from(relative);
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err(format!("{} is not a path inside data/", relative.display()));
    }
    let path = into.join(&relative);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    files::write_synced(&path, bytes)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o777))
            .map_err(|e| e.to_string())?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    Ok(())
}
