//! Opening a data directory: the lock file, the format marker, and refusing damaged or foreign stores.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::codec::{SledResultExt, sled_err};
use crate::{StoreError, StoreResult};

/// The marker file written into a new data directory.
pub const MARKER_FILE: &str = "pipecat-store.json";
/// The newest on-disk format this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// The lock file held (flock) for the life of the store.
pub(crate) const LOCK_FILE: &str = "pipecat-store.lock";
/// The size of sled's page cache. sled counts a cached page by its size on disk; the memory it takes is
/// larger (about 1× on the write path, about 2.5× for pages read back), so this is kept small: the hot
/// entities fit many times over, and run records are written once and rarely read again (issue #8).
const SLED_CACHE_BYTES: u64 = 16 << 20;
/// The sub-directory holding sled's files.
pub(crate) const SLED_DIR: &str = "sled";
/// Key in the meta tree written when the store is created; a store that opens without it started empty.
pub(crate) const FORMAT_KEY: &[u8] = b"format_version";

#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    format_version: u32,
    created_by: String,
    /// Set by a clean close, cleared at open: after a clean close the contents must match on reopen.
    #[serde(default)]
    clean_shutdown: Option<CleanShutdown>,
}

#[derive(Debug, Serialize, Deserialize)]
struct CleanShutdown {
    /// sled's CRC32 over every tree name, key and value.
    checksum: u32,
}

/// A data directory checked and locked, with sled open.
pub(crate) struct Opened {
    pub(crate) db: sled::Db,
    pub(crate) lock: File,
}

/// Locks `dir`, checks its marker, opens sled, and verifies the store did not come up empty.
pub(crate) fn open_dir(dir: &Path, trees: &[&str]) -> StoreResult<Opened> {
    fs::create_dir_all(dir)
        .map_err(|e| StoreError::io(format!("creating {}", dir.display()), e))?;
    let lock = lock_dir(dir)?;
    let marker_path = dir.join(MARKER_FILE);
    let sled_path = dir.join(SLED_DIR);
    let existing = match fs::read(&marker_path) {
        Ok(bytes) => {
            let marker = check_marker(dir, &bytes)?;
            if !sled_path.join("db").is_file() || !sled_path.join("conf").is_file() {
                return Err(corrupt(
                    dir,
                    "the marker is present but the sled files (sled/db, sled/conf) are missing",
                ));
            }
            Some(marker)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            refuse_foreign(dir)?;
            None
        }
        Err(e) => {
            return Err(StoreError::io(
                format!("reading {}", marker_path.display()),
                e,
            ));
        }
    };

    let db = open_sled(dir, &sled_path)?;
    let meta = db.open_tree(super::META).ctx("opening the meta tree")?;
    if let Some(marker) = existing {
        let format = meta.get(FORMAT_KEY).map_err(|e| open_err(dir, e))?;
        if !db.was_recovered() || format.is_none() {
            return Err(corrupt(
                dir,
                "the store came up empty although it was created before (files truncated or overwritten?)",
            ));
        }
        for name in trees {
            db.open_tree(name).ctx("opening a tree")?;
        }
        // Reads every tree once, so damaged pages are found now rather than at the first request.
        let sum = checksum(dir, &db)?;
        if let Some(clean) = marker.clean_shutdown
            && clean.checksum != sum
        {
            return Err(corrupt(
                dir,
                "the contents differ from what was there at the last clean shutdown (files truncated or overwritten?)",
            ));
        }
    } else {
        meta.insert(FORMAT_KEY, &FORMAT_VERSION.to_be_bytes())
            .ctx("initialising the store")?;
        db.flush().ctx("initialising the store")?;
    }
    // From now on a crash leaves the marker without a clean-shutdown checksum.
    write_marker(dir, None)?;
    Ok(Opened { db, lock })
}

/// Records a clean close: flushes, checksums, and writes the checksum into the marker.
pub(crate) fn mark_clean_shutdown(dir: &Path, db: &sled::Db) -> StoreResult<()> {
    db.flush().ctx("flushing at close")?;
    let sum = checksum(dir, db)?;
    write_marker(dir, Some(CleanShutdown { checksum: sum }))
}

fn lock_dir(dir: &Path) -> StoreResult<File> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| StoreError::io(format!("opening {}", path.display()), e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked {
            path: dir.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(StoreError::io(format!("locking {}", path.display()), e))
        }
    }
}

fn check_marker(dir: &Path, bytes: &[u8]) -> StoreResult<Marker> {
    let marker: Marker = serde_json::from_slice(bytes)
        .map_err(|e| corrupt(dir, format!("{MARKER_FILE} is unreadable: {e}")))?;
    if marker.format_version == 0 || marker.format_version > FORMAT_VERSION {
        return Err(StoreError::UnsupportedFormat {
            path: dir.to_path_buf(),
            found: marker.format_version,
            supported: FORMAT_VERSION,
        });
    }
    Ok(marker)
}

/// A directory without a marker must be empty (apart from our lock file).
fn refuse_foreign(dir: &Path) -> StoreResult<()> {
    let entries =
        fs::read_dir(dir).map_err(|e| StoreError::io(format!("listing {}", dir.display()), e))?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io(format!("listing {}", dir.display()), e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != LOCK_FILE {
            found.push(name);
        }
    }
    if found.is_empty() {
        return Ok(());
    }
    found.sort();
    found.truncate(5);
    let reason = if found.iter().any(|n| n == SLED_DIR) {
        format!(
            "it holds sled files but no marker ({}); refusing to treat it as an empty store",
            found.join(", ")
        )
    } else {
        format!(
            "it holds unknown files ({}); use an empty directory",
            found.join(", ")
        )
    };
    Err(StoreError::NotAStore {
        path: dir.to_path_buf(),
        reason,
    })
}

fn open_sled(dir: &Path, sled_path: &Path) -> StoreResult<sled::Db> {
    // sled's page cache defaults to 1 GiB, which a busy store fills with run records nobody reads again;
    // 16 MiB keeps the hot entities and recent runs (resident memory stays bounded, docs/benchmarks.md).
    super::malloc::pin_mmap_threshold();
    let config = sled::Config::new()
        .path(sled_path)
        .flush_every_ms(None)
        .cache_capacity(SLED_CACHE_BYTES);
    // sled panics on some kinds of damage instead of returning an error; never let that take the host down.
    match catch_unwind(AssertUnwindSafe(|| config.open())) {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(e)) => Err(open_err(dir, e)),
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "unknown panic".to_owned());
            Err(corrupt(
                dir,
                format!("sled failed while recovering: {what}"),
            ))
        }
    }
}

/// sled's CRC32 over all trees (reads everything; sled panics on some damage, which is caught).
fn checksum(dir: &Path, db: &sled::Db) -> StoreResult<u32> {
    match catch_unwind(AssertUnwindSafe(|| db.checksum())) {
        Ok(Ok(sum)) => Ok(sum),
        Ok(Err(e)) => Err(open_err(dir, e)),
        Err(_) => Err(corrupt(dir, "sled failed while reading the stored trees")),
    }
}

fn open_err(dir: &Path, e: sled::Error) -> StoreError {
    match e {
        sled::Error::Corruption { at, .. } => {
            corrupt(dir, format!("sled detected corruption at {at:?}"))
        }
        sled::Error::Unsupported(msg) => corrupt(dir, format!("sled refused the files: {msg}")),
        sled::Error::ReportableBug(msg) => {
            corrupt(dir, format!("sled failed while recovering: {msg}"))
        }
        other => sled_err(&format!("opening the store in {}", dir.display()), other),
    }
}

fn corrupt(dir: &Path, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        path: dir.to_path_buf(),
        reason: reason.into(),
    }
}

/// Writes the marker atomically (temp file, fsync, rename, fsync of the directory).
fn write_marker(dir: &Path, clean_shutdown: Option<CleanShutdown>) -> StoreResult<()> {
    let marker = Marker {
        format_version: FORMAT_VERSION,
        created_by: format!("pipecat-store {}", env!("CARGO_PKG_VERSION")),
        clean_shutdown,
    };
    let bytes = serde_json::to_vec_pretty(&marker)
        .map_err(|e| StoreError::Backend(format!("encoding the marker: {e}")))?;
    let tmp: PathBuf = dir.join(format!("{MARKER_FILE}.tmp"));
    let io = |e| StoreError::io(format!("writing {}", dir.join(MARKER_FILE).display()), e);
    let mut file = File::create(&tmp).map_err(io)?;
    file.write_all(&bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    fs::rename(&tmp, dir.join(MARKER_FILE)).map_err(io)?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    Ok(())
}
