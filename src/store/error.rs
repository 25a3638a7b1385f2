//! The store's own error: what sled reported, or a record that could not
//! be read or written. It knows nothing of HTTP; `crate::error` maps it to
//! a Matrix error (500 `M_UNKNOWN`) above the store.

use sled::transaction::TransactionError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage error: {0}")]
    Sled(sled::Error),
    /// The disk is (nearly) full: writes are refused until space is freed.
    #[error(
        "the disk holding the data directory is full: nothing can be stored until space is freed"
    )]
    Full,
    /// A record that does not decode (corruption) or does not encode.
    #[error("{0}")]
    Data(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    pub fn data(message: impl Into<String>) -> Self {
        Self::Data(message.into())
    }
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        match e {
            sled::Error::Io(ref io) if io.kind() == std::io::ErrorKind::StorageFull => Self::Full,
            other => Self::Sled(other),
        }
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        sled::Error::Io(e).into()
    }
}

impl From<TransactionError<StoreError>> for StoreError {
    fn from(e: TransactionError<StoreError>) -> Self {
        match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => e.into(),
        }
    }
}
