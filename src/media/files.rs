//! Media bytes on disk: one file per distinct content under
//! `data/media/`, named by its SHA-256 (`ab/cdef…`), so identical uploads
//! are stored once and a file never changes once named. Bytes arrive in
//! `data/media/tmp/`, hashed as they are written, and are synced and
//! renamed into place before anything names them.

use std::{
    io,
    path::{Path, PathBuf},
    time::Duration,
};

use bytes::Buf;
use futures_util::{Stream, TryStreamExt};
use tokio::io::AsyncWriteExt;

/// Why bytes were not received.
#[derive(Debug)]
pub enum ReceiveError {
    /// More than the limit arrived (or was declared).
    TooLarge,
    /// No byte came for the idle time.
    Stalled,
    /// The disk would fall below the free space the store keeps.
    DiskFull,
    /// The sender's stream failed.
    Body(String),
    Io(io::Error),
}

impl From<io::Error> for ReceiveError {
    fn from(e: io::Error) -> Self {
        ReceiveError::Io(e)
    }
}

/// Bytes received into a temporary file, removed unless kept.
pub struct Received {
    temp: PathBuf,
    pub sha256: [u8; 32],
    pub size: u64,
    kept: bool,
}

impl Drop for Received {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// How much may be received: at most `limit` bytes, and no more than
/// `room` (free space above the store's reserve).
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub limit: u64,
    pub room: u64,
    /// Longest wait for the next chunk.
    pub idle: Duration,
}

#[derive(Clone)]
pub struct Files {
    root: PathBuf,
}

impl Files {
    /// The media directory of `data_dir`, made if missing; what a stopped
    /// upload left in `tmp/` is removed.
    pub fn open(data_dir: &Path) -> io::Result<Self> {
        let root = data_dir.join("media");
        let tmp = root.join("tmp");
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)?;
        }
        std::fs::create_dir_all(&tmp)?;
        Ok(Self { root })
    }

    /// Where the file with this hash is kept.
    pub fn path(&self, sha256: &[u8; 32]) -> PathBuf {
        let hex = hex(sha256);
        self.root.join(&hex[..2]).join(&hex[2..])
    }

    /// Writes `body` to a temporary file, hashing it, within `budget`.
    pub async fn receive<S, B, E>(&self, body: S, budget: Budget) -> Result<Received, ReceiveError>
    where
        S: Stream<Item = Result<B, E>>,
        B: Buf,
        E: std::fmt::Display,
    {
        let temp = self
            .root
            .join("tmp")
            .join(format!("{:032x}", rand::random::<u128>()));
        let mut received = Received {
            temp,
            sha256: [0; 32],
            size: 0,
            kept: false,
        };
        let mut file = tokio::fs::File::create(&received.temp).await?;
        let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
        let mut body = std::pin::pin!(body);
        loop {
            let chunk = tokio::time::timeout(budget.idle, body.try_next())
                .await
                .map_err(|_| ReceiveError::Stalled)?
                .map_err(|e| ReceiveError::Body(e.to_string()))?;
            let Some(mut chunk) = chunk else { break };
            while chunk.has_remaining() {
                let part = chunk.chunk();
                let n = part.len();
                received.size += n as u64;
                if received.size > budget.limit {
                    return Err(ReceiveError::TooLarge);
                }
                if received.size > budget.room {
                    return Err(ReceiveError::DiskFull);
                }
                hash.update(part);
                file.write_all(part).await?;
                chunk.advance(n);
            }
        }
        file.sync_all().await?;
        received.sha256.copy_from_slice(hash.finish().as_ref());
        Ok(received)
    }

    /// Puts received bytes in place under their hash (a file with the
    /// same content may be there already), durably.
    pub async fn keep(&self, mut received: Received) -> io::Result<[u8; 32]> {
        let path = self.path(&received.sha256);
        let dir = path.parent().unwrap_or(&self.root).to_owned();
        let temp = received.temp.clone();
        tokio::task::spawn_blocking(move || -> io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            std::fs::rename(&temp, &path)?;
            std::fs::File::open(&dir)?.sync_all()
        })
        .await
        .map_err(io::Error::other)??;
        received.kept = true;
        Ok(received.sha256)
    }

    /// Writes `bytes` (a thumbnail) in place under their hash.
    pub async fn write(&self, bytes: Vec<u8>) -> io::Result<([u8; 32], u64)> {
        let size = bytes.len() as u64;
        let stream = futures_util::stream::iter([Ok::<_, io::Error>(bytes::Bytes::from(bytes))]);
        let budget = Budget {
            limit: u64::MAX,
            room: u64::MAX,
            idle: Duration::from_secs(60),
        };
        let received = self.receive(stream, budget).await.map_err(|e| match e {
            ReceiveError::Io(e) => e,
            other => io::Error::other(format!("{other:?}")),
        })?;
        Ok((self.keep(received).await?, size))
    }

    /// Deletes a file no record names any more.
    pub fn remove(&self, sha256: &[u8; 32]) {
        let path = self.path(sha256);
        if let Err(e) = std::fs::remove_file(&path) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(path = %path.display(), error = %e, "could not delete a media file");
            }
        }
    }

    /// Every file kept, by hash (a crash between a file's rename and its
    /// record leaves one no record names: `sweep` finds those).
    pub fn all(&self) -> io::Result<Vec<[u8; 32]>> {
        let mut found = Vec::new();
        for dir in std::fs::read_dir(&self.root)? {
            let dir = dir?;
            let prefix = dir.file_name().to_string_lossy().into_owned();
            if prefix.len() != 2 || !dir.file_type()?.is_dir() {
                continue;
            }
            for file in std::fs::read_dir(dir.path())? {
                let name = format!("{prefix}{}", file?.file_name().to_string_lossy());
                if let Some(sha256) = unhex(&name) {
                    found.push(sha256);
                }
            }
        }
        Ok(found)
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests;
