//! The store's own error: what sled reported, or a record that could not
//! be read or written. It knows nothing of HTTP; `crate::error` maps it to
//! a Matrix error (500 `M_UNKNOWN`) above the store.

use sled::transaction::TransactionError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage error: {0}")]
    Sled(#[from] sled::Error),
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

impl From<TransactionError<StoreError>> for StoreError {
    fn from(e: TransactionError<StoreError>) -> Self {
        match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => e.into(),
        }
    }
}
