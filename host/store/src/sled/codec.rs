//! Value encoding (JSON) and mapping of sled errors.

use serde::Serialize;
use serde::de::DeserializeOwned;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use crate::{StoreError, StoreResult};

/// Encodes a record.
pub(crate) fn enc<T: Serialize>(what: &'static str, value: &T) -> StoreResult<Vec<u8>> {
    serde_json::to_vec(value)
        .map_err(|e| StoreError::InvalidInput(format!("{what} cannot be encoded: {e}")))
}

/// Decodes a record.
pub(crate) fn dec<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> StoreResult<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Decode {
        what,
        reason: e.to_string(),
    })
}

/// Decodes inside a transaction (aborting it on failure).
pub(crate) fn tx_dec<T: DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, ConflictableTransactionError<StoreError>> {
    dec(what, bytes).map_err(ConflictableTransactionError::Abort)
}

/// Encodes inside a transaction (aborting it on failure).
pub(crate) fn tx_enc<T: Serialize>(
    what: &'static str,
    value: &T,
) -> Result<Vec<u8>, ConflictableTransactionError<StoreError>> {
    enc(what, value).map_err(ConflictableTransactionError::Abort)
}

/// Maps a sled error, recognising I/O (a full disk included) and corruption.
pub(crate) fn sled_err(context: &str, e: sled::Error) -> StoreError {
    match e {
        sled::Error::Io(io) => StoreError::io(context, io),
        sled::Error::Corruption { at, .. } => StoreError::Backend(format!(
            "corruption detected while {context} (at {at:?}); restore the data directory from a backup"
        )),
        other => StoreError::Backend(format!("{context}: {other}")),
    }
}

/// Maps the result of a transaction.
pub(crate) fn tx_err(context: &str, e: TransactionError<StoreError>) -> StoreError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => sled_err(context, e),
    }
}

/// Shorthand: map a plain sled result.
pub(crate) trait SledResultExt<T> {
    /// Maps the error with a context.
    fn ctx(self, context: &str) -> StoreResult<T>;
}

impl<T> SledResultExt<T> for Result<T, sled::Error> {
    fn ctx(self, context: &str) -> StoreResult<T> {
        self.map_err(|e| sled_err(context, e))
    }
}
