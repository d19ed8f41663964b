//! Refusing large values the file system cannot take, before sled sees them.
//!
//! sled 0.34 writes a page fragment over a quarter of a segment (~128 KiB) to a blob file of its own. When
//! creating that file fails (a full disk), sled loses track of log space it had reserved, and every later
//! flush waits for it forever: the store would stall (`stall.rs` turns that into `Stalled` errors, but only
//! a restart clears it). So a value of [`LARGE`] bytes or more is written only while the file system has
//! room for it and [`HEADROOM`] to spare; otherwise the write fails at once with [`StoreError::DiskFull`],
//! like any other write on a full disk. Smaller values stay inline in sled's log, whose write errors sled
//! reports cleanly.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use sled::transaction::ConflictableTransactionError;

use super::SledStore;
use crate::{StoreError, StoreResult};

/// Values from this size on are checked (well under sled's blob threshold: a page holds more than the value).
pub(super) const LARGE: usize = 32 * 1024;
/// Free space a large write must leave (sled's next log segments and the run log's growth).
pub(super) const HEADROOM: u64 = 2 * 1024 * 1024;

/// Bytes available to this process on the file system holding `dir` (`None` if it cannot be asked).
fn available(dir: &Path) -> Option<u64> {
    let path = CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is NUL-terminated and `st` is a valid out-pointer for one `statvfs`.
    let rc = unsafe { libc::statvfs(path.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: `statvfs` returned 0, so it filled `st`.
    let st = unsafe { st.assume_init() };
    // Both are `u64` here, narrower on some 32-bit targets.
    #[allow(clippy::useless_conversion)]
    Some(u64::from(st.f_bavail).saturating_mul(u64::from(st.f_frsize)))
}

impl SledStore {
    /// `Ok` unless a value of `len` bytes is [`LARGE`] and the store's file system lacks room for it.
    pub(super) fn room_for(&self, len: usize, what: &str) -> StoreResult<()> {
        room_for(&self.dir, len, what)
    }

    /// [`SledStore::room_for`] inside a transaction (aborting it), for a value already encoded there.
    pub(super) fn tx_room_for(
        &self,
        value: &[u8],
        what: &str,
    ) -> Result<(), ConflictableTransactionError<StoreError>> {
        self.room_for(value.len(), what)
            .map_err(ConflictableTransactionError::Abort)
    }
}

/// `Ok` unless `len` is [`LARGE`] and the file system holding `dir` lacks room for it plus [`HEADROOM`].
fn room_for(dir: &Path, len: usize, what: &str) -> StoreResult<()> {
    if len < LARGE {
        return Ok(());
    }
    let needed = u64::try_from(len)
        .unwrap_or(u64::MAX)
        .saturating_add(HEADROOM);
    match available(dir) {
        Some(free) if free < needed => Err(StoreError::DiskFull {
            context: format!("{what} ({len} bytes; {free} bytes free)"),
        }),
        _ => Ok(()),
    }
}
