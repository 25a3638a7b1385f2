//! Everything hearth keeps lives in one sled database under `data_dir`.
//! Each tree is defined, with its key and value layout, in the module that
//! owns it; callers go through these small typed APIs, never raw trees.

pub mod accounts;
pub mod aliases;
pub mod appservices;
pub mod backfill;
mod compression;
mod counter;
pub mod delayed;
pub mod destinations;
mod disk;
pub mod dump;
pub mod e2ee;
pub mod edus;
pub mod error;
pub mod identity;
mod key;
pub mod key_backup;
pub mod media;
pub mod outbound;
pub mod partial;
pub mod pending;
pub mod pushers;
mod recent;
mod recent_changes;
pub mod reports;
pub mod rooms;
mod signing_keys;
mod snapshot;
pub mod transactions;
mod tree;
mod varint;

use std::path::Path;

pub use signing_keys::{
    OwnSigningKey, RemoteKey, ServerKeyTree, SigningKeyTree, StoredKeyResponse,
};

pub use disk::FreeSpace;
pub use snapshot::{verify_copy, CopyReport, TreeSummary};

use error::Result;
pub use error::StoreError;

/// The opened database and its typed trees.
#[derive(Clone)]
pub struct Store {
    pub signing_keys: SigningKeyTree,
    pub server_keys: ServerKeyTree,
    pub rooms: rooms::RoomTrees,
    pub outbound: outbound::OutboundTree,
    pub transactions: transactions::TransactionTree,
    pub pending: pending::PendingTree,
    pub partial: partial::PartialTree,
    pub backfill: backfill::BackfillTree,
    pub destinations: destinations::DestinationTree,
    pub edus: edus::EduTrees,
    pub accounts: accounts::AccountTrees,
    pub aliases: aliases::AliasTree,
    pub public_rooms: aliases::PublicRoomTree,
    pub e2ee: e2ee::E2eeTrees,
    pub media: media::MediaTrees,
    pub key_backup: key_backup::KeyBackupTrees,
    pub reports: reports::ReportTree,
    pub pushers: pushers::PusherTree,
    pub delayed: delayed::DelayedTree,
    pub appservice_txns: appservices::AppserviceTxnTree,
    /// The database and its write gate (for flushes and backups).
    db: tree::Database,
    /// Free space on the data directory's disk, as last sampled.
    free_space: FreeSpace,
    /// The data directory the database is in (`identity.json` is beside it).
    data_dir: std::sync::Arc<Path>,
}

/// Why the database could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// Another process (a running hearth) holds the database.
    Locked,
    Other(String),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Locked => write!(f, "the data directory is in use by a running hearth"),
            OpenError::Other(e) => write!(f, "{e}"),
        }
    }
}

impl Store {
    pub fn open(data_dir: &Path) -> std::result::Result<Self, OpenError> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            OpenError::Other(format!(
                "cannot create data dir {}: {e}",
                data_dir.display()
            ))
        })?;
        let converted = match compression::convert(data_dir) {
            Ok(converted) => converted,
            Err(StoreError::Sled(sled::Error::Io(ref io))) if snapshot::is_lock(io) => {
                return Err(OpenError::Locked)
            }
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "could not convert the database to compressed storage; it keeps working as it is"
                );
                false
            }
        };
        // A small cache: the target is a Raspberry Pi, and sled's default is 1 GiB.
        let config = compression::config(&data_dir.join("db"), 16 * 1024 * 1024);
        let opened = match converted {
            true => snapshot::open_when_released(&config),
            false => config.open(),
        };
        let db = tree::Database::new(opened.map_err(|e| match e {
            sled::Error::Io(ref io) if snapshot::is_lock(io) => OpenError::Locked,
            other => OpenError::Other(format!("cannot open database: {other}")),
        })?);
        let open = |name: &str| {
            db.open_tree(name)
                .map_err(|e| OpenError::Other(e.to_string()))
        };
        let outbound = outbound::OutboundTree::new(open(outbound::OUTBOUND)?);
        let ids = counter::Counter::open(&db).map_err(|e| OpenError::Other(e.to_string()))?;
        Ok(Self {
            rooms: rooms::RoomTrees::open(&db, &ids, &outbound)
                .map_err(|e| OpenError::Other(e.to_string()))?,
            outbound,
            signing_keys: SigningKeyTree::new(open(signing_keys::SIGNING_KEYS)?),
            server_keys: ServerKeyTree::new(
                open(signing_keys::SERVER_KEYS)?,
                open(signing_keys::KEY_RESPONSES)?,
            ),
            transactions: transactions::TransactionTree::new(
                open(transactions::TRANSACTIONS)?,
                open(transactions::STAGED)?,
            )
            .map_err(|e| OpenError::Other(e.to_string()))?,
            pending: pending::PendingTree::new(open(pending::PENDING)?),
            partial: partial::PartialTree::new(
                open(partial::PARTIAL_STATE)?,
                open(partial::STATE_COMPLETED)?,
            ),
            backfill: backfill::BackfillTree::new(open(backfill::BACKFILLED)?),
            destinations: destinations::DestinationTree::new(open(destinations::DESTINATIONS)?),
            edus: edus::EduTrees::open(&db, &ids).map_err(|e| OpenError::Other(e.to_string()))?,
            accounts: accounts::AccountTrees::open(&db)
                .map_err(|e| OpenError::Other(e.to_string()))?,
            aliases: aliases::AliasTree::new(open(aliases::ALIASES)?),
            public_rooms: aliases::PublicRoomTree::new(open(aliases::PUBLIC_ROOMS)?),
            e2ee: e2ee::E2eeTrees::open(&db).map_err(|e| OpenError::Other(e.to_string()))?,
            media: media::MediaTrees::open(&db).map_err(|e| OpenError::Other(e.to_string()))?,
            delayed: delayed::DelayedTree::open(&db)
                .map_err(|e| OpenError::Other(e.to_string()))?,
            key_backup: key_backup::KeyBackupTrees::open(&db, &ids)
                .map_err(|e| OpenError::Other(e.to_string()))?,
            reports: reports::ReportTree::open(&db, &ids)
                .map_err(|e| OpenError::Other(e.to_string()))?,
            pushers: pushers::PusherTree::open(&db).map_err(|e| OpenError::Other(e.to_string()))?,
            appservice_txns: appservices::AppserviceTxnTree::open(&db)
                .map_err(|e| OpenError::Other(e.to_string()))?,
            data_dir: data_dir.into(),
            free_space: FreeSpace::default(),
            db,
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Durably writes everything stored so far; called before acknowledging.
    pub async fn flush(&self) -> Result<()> {
        self.rooms.flush().await
    }

    /// Forgets the idempotency records older than `cutoff_ms` (answers to
    /// transactions, to-device message IDs): a retry comes within
    /// minutes, and they would otherwise grow without end.
    pub fn prune_idempotency_records(&self, cutoff_ms: u64) -> Result<usize> {
        Ok(self.transactions.prune(cutoff_ms)? + self.edus.prune_message_ids(cutoff_ms)?)
    }
}

/// Serialises a value for storage; our own types always serialise.
fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| StoreError::data(format!("cannot encode record: {e}")))
}

/// Reads a stored big-endian u64 (a short id, a stream position).
fn u64_value(tree: &str, bytes: &[u8]) -> Result<u64> {
    <[u8; 8]>::try_from(bytes)
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::data(format!("corrupt number in tree {tree}")))
}

/// Reads a stored record, reporting corruption rather than panicking.
fn decode<T: serde::de::DeserializeOwned>(tree: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| StoreError::data(format!("corrupt record in tree {tree}: {e}")))
}

/// Opens a store a test has just dropped: sled's background threads let go
/// of the directory's lock a moment after the last handle goes, later on a
/// loaded machine.
#[cfg(test)]
pub(crate) fn reopen(data_dir: &Path) -> Store {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        match Store::open(data_dir) {
            Err(OpenError::Locked) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            opened => return opened.expect("reopen"),
        }
    }
}
