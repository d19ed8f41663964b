//! The one error type of the store.

use std::path::PathBuf;

/// Everything that can go wrong in a [`Store`](crate::Store).
///
/// I/O problems are mapped (never panics); a full disk and stalled disk writes get their own variants so
/// the server can answer `507`/`503` with a clear code instead of a generic `500`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process (or another `open` in this process) holds the data directory.
    #[error(
        "the data directory {path} is locked: another pipecat is running with this data directory \
         (stop it or choose another --data-dir)"
    )]
    Locked {
        /// The data directory.
        path: PathBuf,
    },
    /// The store exists but its files are damaged; it refuses to open rather than start empty.
    #[error("the store in {path} is damaged and was not opened: {reason}")]
    Corrupt {
        /// The data directory.
        path: PathBuf,
        /// What was found to be wrong.
        reason: String,
    },
    /// The directory holds files but no store marker: it is not (or no longer) a pipecat store.
    #[error(
        "{path} is not a pipecat store (it holds files but no pipecat-store.json marker): {reason}"
    )]
    NotAStore {
        /// The data directory.
        path: PathBuf,
        /// What was found instead.
        reason: String,
    },
    /// The store was written by a newer (or unknown) format version.
    #[error(
        "the store in {path} has format version {found}; this pipecat supports up to {supported}"
    )]
    UnsupportedFormat {
        /// The data directory.
        path: PathBuf,
        /// The version found in the marker.
        found: u32,
        /// The newest version this build understands.
        supported: u32,
    },
    /// The disk (or quota) is full; the write was not made durable.
    #[error("the disk holding the store is full ({context})")]
    DiskFull {
        /// What the store was doing.
        context: String,
    },
    /// Any other I/O error.
    #[error("store I/O error while {context}: {source}")]
    Io {
        /// What the store was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An error reported by the storage backend (not I/O).
    #[error("storage backend error: {0}")]
    Backend(String),
    /// A record in the store could not be decoded.
    #[error("a stored record could not be decoded ({what}): {reason}")]
    Decode {
        /// Which kind of record.
        what: &'static str,
        /// The decoder's message.
        reason: String,
    },
    /// The caller passed something the store cannot hold (e.g. a plugin name with a NUL byte).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// An object with this id already exists.
    #[error("{what} already exists")]
    AlreadyExists {
        /// Which kind of object.
        what: &'static str,
    },
    /// The account has used its monthly run limit; nothing was counted.
    #[error("monthly run limit reached: {used} of {limit} runs used")]
    LimitExceeded {
        /// Runs counted this month.
        used: u64,
        /// The limit that applied.
        limit: u64,
    },
    /// A disk write of the store (a flush, a run-log write) has been in progress longer than the stall
    /// limit (30 s unless opened with another): the disk or sled is stuck. Writes fail with this at once
    /// until it completes; one that was already waiting may still be recorded once the disk answers.
    #[error(
        "the store's disk writes have not completed for {secs} s (a {what} is stuck): check the disk \
         and the server log, then restart the server"
    )]
    Stalled {
        /// Which kind of disk write is stuck.
        what: &'static str,
        /// How long it has been in progress, in seconds.
        secs: u64,
    },
    /// The store was shut down (its group-commit flusher is gone).
    #[error("the store is closed")]
    Closed,
}

impl StoreError {
    /// Maps an I/O error, recognising a full disk.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        let context = context.into();
        if is_disk_full(&source) {
            StoreError::DiskFull { context }
        } else {
            StoreError::Io { context, source }
        }
    }

    /// True when the error is the disk being full.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, StoreError::DiskFull { .. })
    }

    /// True when the error is the store's disk writes being stalled ([`StoreError::Stalled`]).
    pub fn is_stalled(&self) -> bool {
        matches!(self, StoreError::Stalled { .. })
    }
}

/// `ENOSPC` / `EDQUOT` (or the portable `StorageFull` / `QuotaExceeded` kinds).
fn is_disk_full(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(e.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded)
        || matches!(e.raw_os_error(), Some(28) | Some(122))
}

/// Shorthand for results of store operations.
pub type StoreResult<T> = Result<T, StoreError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_recognised() {
        let enospc = std::io::Error::from_raw_os_error(28);
        assert!(StoreError::io("flushing", enospc).is_disk_full());
        let other = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert!(matches!(
            StoreError::io("flushing", other),
            StoreError::Io { .. }
        ));
    }

    #[test]
    fn the_lock_error_names_the_directory() {
        let e = StoreError::Locked {
            path: "/srv/pipecat-data".into(),
        };
        let msg = e.to_string();
        assert!(
            msg.contains("/srv/pipecat-data") && msg.contains("another pipecat is running"),
            "{msg}"
        );
    }
}
