//! The write-ahead log of the hot path: run records and monthly counters.
//!
//! A sled flush costs far more than the write it protects (several `pwrite`s, `sync_file_range`, thread
//! hand-offs, spinning while it waits), and every invocation needs one. So a run's sled writes are made
//! durable by appending the same writes to this log instead: one `pwrite` and one `fdatasync` per
//! group-commit round, shared by every writer queued before it started.
//!
//! The log is one file, `pipecat-wal.log`, in the data directory. It is overwritten in place from the
//! start after each *checkpoint* (a durable sled flush, after which the log's records are no longer
//! needed), and grows only in zero-filled chunks that are synced once, so a round's `fdatasync` writes
//! data blocks only and never waits on a journal commit for a changed file size.
//!
//! A record is `len: u32 ‖ epoch: u64 ‖ blake3(epoch ‖ payload)[..8] ‖ payload`, little-endian. The
//! epoch grows at every checkpoint and is kept in sled's meta tree; at open, the records of the current
//! epoch are read from the start of the file until the first that is torn, stale or corrupt, and their
//! writes applied again (idempotent: inserts, and counters that only move up), then a checkpoint starts
//! a fresh epoch.
//!
//! Each round is timed by the stall watchdog (`stall.rs`): a write or checkpoint stuck past the stall
//! limit fails the waiters with `StoreError::Stalled` instead of keeping them forever.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::codec::sled_err;
use super::commit::{flush_durably, stop_thread};
use super::stall::{Watchdog, Writer as WriterId};
use crate::{StoreError, StoreResult};

/// The log file in the data directory.
pub(crate) const WAL_FILE: &str = "pipecat-wal.log";
/// Meta key of the current epoch.
const EPOCH_KEY: &[u8] = b"wal_epoch";
/// A checkpoint starts a new epoch once the log holds this much.
const CAPACITY: u64 = 16 << 20;
/// The log grows in zero-filled chunks of this size.
const CHUNK: u64 = 1 << 20;
const HEADER: usize = 4 + 8 + 8;

/// Which tree a logged write goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TreeId {
    Runs = 1,
    RunsByWorkflow = 2,
    RunCounters = 3,
}

/// One logged write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpKind {
    /// Insert the value.
    Insert = 1,
    /// A big-endian `u64` that replaces the stored one only when larger (counters).
    MaxU64 = 2,
}

/// The writes of one logical change, encoded for the log.
#[derive(Debug, Default)]
pub(crate) struct WalEntry {
    payload: Vec<u8>,
}

impl WalEntry {
    /// Logs an insert.
    pub(crate) fn insert(&mut self, tree: TreeId, key: &[u8], value: &[u8]) {
        self.op(OpKind::Insert, tree, key, value);
    }

    /// Logs a counter that only moves up.
    pub(crate) fn max_u64(&mut self, tree: TreeId, key: &[u8], value: u64) {
        self.op(OpKind::MaxU64, tree, key, &value.to_be_bytes());
    }

    /// One entry holding the writes of `entries`, in order (emptying it): a payload is a sequence of writes.
    fn concat(entries: &mut Vec<WalEntry>) -> WalEntry {
        let mut payload =
            Vec::with_capacity(entries.iter().map(|e| e.payload.len()).sum::<usize>());
        for entry in entries.drain(..) {
            payload.extend_from_slice(&entry.payload);
        }
        WalEntry { payload }
    }

    fn op(&mut self, kind: OpKind, tree: TreeId, key: &[u8], value: &[u8]) {
        let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
        self.payload.reserve(10 + key.len() + value.len());
        self.payload.push(kind as u8);
        self.payload.push(tree as u8);
        self.payload.extend_from_slice(&len(key.len()));
        self.payload.extend_from_slice(key);
        self.payload.extend_from_slice(&len(value.len()));
        self.payload.extend_from_slice(value);
    }
}

/// The trees a replay writes into.
pub(crate) struct ReplayTrees<'a> {
    pub(crate) runs: &'a sled::Tree,
    pub(crate) runs_by_workflow: &'a sled::Tree,
    pub(crate) run_counters: &'a sled::Tree,
}

type Waiter = oneshot::Sender<Result<(), String>>;

enum Command {
    Append(WalEntry, Option<Waiter>),
    Checkpoint(Waiter),
}

/// The log and its writer thread.
pub(crate) struct Wal {
    queue: Mutex<Option<mpsc::Sender<Command>>>,
    /// Entries of [`Wal::append_later`], handed to the thread with the next command so that they ride on
    /// its round instead of costing one of their own.
    later: Mutex<Vec<WalEntry>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    rounds: Arc<AtomicU64>,
    watchdog: Arc<Watchdog>,
}

impl Wal {
    /// Opens the log in `dir`, applies the records of the current epoch to `trees`, makes them durable,
    /// starts a new epoch and the writer thread, whose rounds `watchdog` times.
    pub(crate) fn open(
        dir: &Path,
        db: sled::Db,
        meta: sled::Tree,
        data_file: File,
        trees: &ReplayTrees<'_>,
        watchdog: Arc<Watchdog>,
    ) -> StoreResult<Self> {
        let path = dir.join(WAL_FILE);
        let io = |what: &str, e| StoreError::io(format!("{what} {}", path.display()), e);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| io("opening", e))?;
        let epoch = read_epoch(&meta)?;
        let bytes = std::fs::read(&path).map_err(|e| io("reading", e))?;
        let replayed = replay(&bytes, epoch, trees)?;
        if replayed > 0 {
            tracing::info!(
                records = replayed,
                "store log replayed after an unclean stop"
            );
        }
        let filled = file.metadata().map_err(|e| io("reading", e))?.len();
        let mut writer = Writer {
            db,
            meta,
            data_file,
            file,
            epoch,
            offset: 0,
            filled,
        };
        writer
            .checkpoint()
            .map_err(|e| sled_err("starting the store log", e))?;
        let (tx, rx) = mpsc::channel();
        let rounds = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&rounds);
        let watched = Arc::clone(&watchdog);
        let thread = std::thread::Builder::new()
            .name("pipecat-store-log".into())
            .spawn(move || {
                let _exit = watched.exit_guard(WriterId::Log);
                writer.run(&rx, &counter, &watched);
            })
            .map_err(|e| StoreError::io("starting the store log thread", e))?;
        Ok(Wal {
            queue: Mutex::new(Some(tx)),
            later: Mutex::new(Vec::new()),
            thread: Mutex::new(Some(thread)),
            rounds,
            watchdog,
        })
    }

    /// Queues `command`; refused while the store is stalled.
    fn send(&self, command: Command) -> StoreResult<()> {
        self.watchdog.check()?;
        // `later` is held while sending so that its entries enter the queue in the order they were made.
        let mut later = self.later.lock().map_err(|_| StoreError::Closed)?;
        let queue = self.queue.lock().map_err(|_| StoreError::Closed)?;
        let sender = queue.as_ref().ok_or(StoreError::Closed)?;
        let command = match command {
            // One message, so the thread cannot start a round between the kept entries and this one.
            Command::Append(entry, waiter) if !later.is_empty() => {
                later.push(entry);
                Command::Append(WalEntry::concat(&mut later), waiter)
            }
            command => {
                for entry in later.drain(..) {
                    sender
                        .send(Command::Append(entry, None))
                        .map_err(|_| StoreError::Closed)?;
                }
                command
            }
        };
        sender.send(command).map_err(|_| StoreError::Closed)
    }

    /// Keeps `entry` for the next round; it is durable once an `append` made after it has returned.
    ///
    /// It does not wake the writer: a reservation queued on its own cost a round (a `pwrite` and an
    /// `fdatasync`) per run, and the run's record, arriving while that round ran, waited for two.
    /// Everything kept here is already in sled, so a checkpoint covers it too.
    pub(crate) fn append_later(&self, entry: WalEntry) -> StoreResult<()> {
        self.watchdog.check()?;
        self.later
            .lock()
            .map_err(|_| StoreError::Closed)?
            .push(entry);
        Ok(())
    }

    /// Appends `entry` and waits until it (and everything queued before it) is on disk; fails with
    /// `Stalled` at once while the store is stalled, and as soon as it becomes stalled while waiting.
    pub(crate) async fn append(&self, entry: WalEntry) -> StoreResult<()> {
        let answer = self
            .watchdog
            .wait_for(|tx| self.send(Command::Append(entry, Some(tx))))
            .await?;
        logged(answer)
    }

    /// Makes sled durable and empties the log (before deleting what the log may hold); fails with
    /// `Stalled` like [`Wal::append`].
    pub(crate) async fn checkpoint(&self) -> StoreResult<()> {
        let answer = self
            .watchdog
            .wait_for(|tx| self.send(Command::Checkpoint(tx)))
            .await?;
        logged(answer)
    }

    /// How many rounds (`fdatasync`s of the log) ran so far.
    pub(crate) fn rounds(&self) -> u64 {
        self.rounds.load(Ordering::Relaxed)
    }

    /// Stops accepting writes, lets the thread finish (with a last checkpoint), and joins it; answers
    /// the thread instead when the store is stalled (it may be stuck in a round).
    pub(crate) fn shutdown(&self) -> Option<JoinHandle<()>> {
        stop_thread(
            &self.queue,
            &self.thread,
            &self.watchdog,
            WriterId::Log,
            "log",
        )
    }
}

fn logged(answer: Result<(), String>) -> StoreResult<()> {
    answer.map_err(|e| StoreError::Backend(format!("writing the store log failed: {e}")))
}

fn read_epoch(meta: &sled::Tree) -> StoreResult<u64> {
    let stored = meta
        .get(EPOCH_KEY)
        .map_err(|e| sled_err("reading the log epoch", e))?;
    Ok(stored
        .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
        .map_or(0, u64::from_be_bytes))
}

fn checksum(epoch: u64, payload: &[u8]) -> [u8; 8] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&epoch.to_le_bytes());
    hasher.update(payload);
    let mut out = [0u8; 8];
    out.copy_from_slice(&hasher.finalize().as_bytes()[..8]);
    out
}

fn frame(out: &mut Vec<u8>, epoch: u64, payload: &[u8]) {
    out.extend_from_slice(
        &u32::try_from(payload.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    out.extend_from_slice(&epoch.to_le_bytes());
    out.extend_from_slice(&checksum(epoch, payload));
    out.extend_from_slice(payload);
}

/// Applies the records of `epoch` from the start of `bytes`; returns how many.
fn replay(bytes: &[u8], epoch: u64, trees: &ReplayTrees<'_>) -> StoreResult<u64> {
    let mut at = 0usize;
    let mut records = 0;
    while let Some(header) = bytes.get(at..at + HEADER) {
        let len = u32::from_le_bytes(header[0..4].try_into().unwrap_or_default()) as usize;
        let rec_epoch = u64::from_le_bytes(header[4..12].try_into().unwrap_or_default());
        let Some(payload) = bytes.get(at + HEADER..at + HEADER + len) else {
            break;
        };
        if len == 0 || rec_epoch != epoch || header[12..20] != checksum(rec_epoch, payload) {
            break;
        }
        apply(payload, trees)?;
        records += 1;
        at += HEADER + len;
    }
    Ok(records)
}

fn apply(mut payload: &[u8], trees: &ReplayTrees<'_>) -> StoreResult<()> {
    let bad = || StoreError::Corrupt {
        path: WAL_FILE.into(),
        reason: "a store log record with a valid checksum does not decode".into(),
    };
    let mut take = |n: usize| -> StoreResult<&[u8]> {
        let (head, rest) = payload.split_at_checked(n).ok_or_else(bad)?;
        payload = rest;
        Ok(head)
    };
    loop {
        let Ok(op) = take(2) else { return Ok(()) };
        let (kind, tree) = (op[0], op[1]);
        let key_len = u32::from_le_bytes(take(4)?.try_into().map_err(|_| bad())?) as usize;
        let key = take(key_len)?.to_vec();
        let value_len = u32::from_le_bytes(take(4)?.try_into().map_err(|_| bad())?) as usize;
        let value = take(value_len)?.to_vec();
        let tree = match tree {
            t if t == TreeId::Runs as u8 => trees.runs,
            t if t == TreeId::RunsByWorkflow as u8 => trees.runs_by_workflow,
            t if t == TreeId::RunCounters as u8 => trees.run_counters,
            _ => return Err(bad()),
        };
        let replayed = |e| sled_err("replaying the store log", e);
        match kind {
            k if k == OpKind::Insert as u8 => {
                tree.insert(key, value).map_err(replayed)?;
            }
            k if k == OpKind::MaxU64 as u8 => {
                let logged: [u8; 8] = value.as_slice().try_into().map_err(|_| bad())?;
                tree.fetch_and_update(key, |old| {
                    let old = old.and_then(|o| <[u8; 8]>::try_from(o).ok());
                    Some(match old {
                        Some(o) if u64::from_be_bytes(o) >= u64::from_be_bytes(logged) => {
                            o.to_vec()
                        }
                        _ => logged.to_vec(),
                    })
                })
                .map_err(replayed)?;
            }
            _ => return Err(bad()),
        }
    }
}

/// The writer thread's state.
struct Writer {
    db: sled::Db,
    meta: sled::Tree,
    data_file: File,
    file: File,
    epoch: u64,
    offset: u64,
    /// Bytes of the file written (zeros at least) and synced.
    filled: u64,
}

impl Writer {
    fn run(mut self, rx: &mpsc::Receiver<Command>, rounds: &AtomicU64, watchdog: &Watchdog) {
        let mut batch = Vec::new();
        let mut buf = Vec::new();
        while let Ok(first) = rx.recv() {
            batch.push(first);
            batch.extend(rx.try_iter());
            let mut waiters = Vec::new();
            let mut checkpoint = false;
            let mut entries = Vec::new();
            for command in batch.drain(..) {
                match command {
                    Command::Append(entry, waiter) => {
                        entries.push(entry);
                        waiters.extend(waiter);
                    }
                    Command::Checkpoint(waiter) => {
                        checkpoint = true;
                        waiters.push(waiter);
                    }
                }
            }
            let size: u64 = entries
                .iter()
                .map(|e| (HEADER + e.payload.len()) as u64)
                .sum();
            let round = watchdog.round(WriterId::Log);
            // Everything queued was written to sled before it was queued, so a checkpoint covers it.
            let result = if checkpoint || self.offset + size > CAPACITY {
                self.checkpoint().map_err(|e| e.to_string())
            } else {
                buf.clear();
                for entry in &entries {
                    frame(&mut buf, self.epoch, &entry.payload);
                }
                self.write(&buf).map_err(|e| e.to_string())
            };
            drop(round);
            rounds.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = &result {
                tracing::error!(error = %e, waiters = waiters.len(), "store log write failed");
            }
            for waiter in waiters {
                // A waiter whose request was dropped no longer listens; nothing to do.
                let _ = waiter.send(result.clone());
            }
        }
        if watchdog.is_stalled() {
            tracing::error!("final store checkpoint skipped: the store's disk writes are stalled");
            return;
        }
        let _round = watchdog.round(WriterId::Log);
        if let Err(e) = self.checkpoint() {
            tracing::error!(error = %e, "final store checkpoint failed");
        }
    }

    fn write(&mut self, buf: &[u8]) -> std::io::Result<()> {
        let end = self.offset + buf.len() as u64;
        if end > self.filled {
            let target = end.div_ceil(CHUNK) * CHUNK;
            let zeros = vec![0u8; usize::try_from(target - self.filled).unwrap_or(0)];
            self.file.write_all_at(&zeros, self.filled)?;
            self.file.sync_all()?;
            self.filled = target;
        }
        self.file.write_all_at(buf, self.offset)?;
        self.file.sync_data()?;
        self.offset = end;
        Ok(())
    }

    /// Makes everything written to sled so far durable there and starts a new, empty epoch.
    fn checkpoint(&mut self) -> Result<(), sled::Error> {
        flush_durably(&self.db, &self.data_file)?;
        let next = self.epoch + 1;
        self.meta.insert(EPOCH_KEY, &next.to_be_bytes())?;
        flush_durably(&self.db, &self.data_file)?;
        self.epoch = next;
        self.offset = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_framed_record_replays_and_a_torn_or_stale_one_stops_the_replay() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let (runs, by_wf, counters) = (
            db.open_tree("r").unwrap(),
            db.open_tree("w").unwrap(),
            db.open_tree("c").unwrap(),
        );
        let trees = ReplayTrees {
            runs: &runs,
            runs_by_workflow: &by_wf,
            run_counters: &counters,
        };
        let mut first = WalEntry::default();
        first.insert(TreeId::Runs, b"run-1", b"record");
        first.max_u64(TreeId::RunCounters, b"acct-2026-12", 7);
        let mut lower = WalEntry::default();
        lower.max_u64(TreeId::RunCounters, b"acct-2026-12", 5);
        let mut stale = WalEntry::default();
        stale.insert(TreeId::Runs, b"run-stale", b"old");

        let mut bytes = Vec::new();
        frame(&mut bytes, 3, &first.payload);
        frame(&mut bytes, 3, &lower.payload);
        frame(&mut bytes, 2, &stale.payload);
        assert_eq!(replay(&bytes, 3, &trees).unwrap(), 2);
        assert_eq!(runs.get(b"run-1").unwrap().unwrap().as_ref(), b"record");
        assert_eq!(
            counters.get(b"acct-2026-12").unwrap().unwrap().as_ref(),
            7u64.to_be_bytes(),
            "a counter logged lower later does not move it down"
        );
        assert!(
            runs.get(b"run-stale").unwrap().is_none(),
            "an older epoch is not replayed"
        );

        let mut torn = Vec::new();
        frame(&mut torn, 3, &stale.payload);
        let cut = torn.len() - 1;
        assert_eq!(
            replay(&torn[..cut], 3, &trees).unwrap(),
            0,
            "a torn record is not replayed"
        );
        torn[HEADER] ^= 0xff;
        assert_eq!(
            replay(&torn, 3, &trees).unwrap(),
            0,
            "a corrupt record is not replayed"
        );
    }
}
