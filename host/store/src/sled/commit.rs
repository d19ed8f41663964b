//! Group commit: writers queue behind one flusher thread; each flush makes everyone queued before it
//! started durable with a single `fsync`, and writers that arrive during a flush wait for the next one.
//!
//! sled 0.34's `flush` ends in `sync_file_range`, which neither flushes the device's write cache nor
//! the file's metadata, so each round also runs `fdatasync` on sled's data file: an acknowledged write
//! survives a power cut, not only a process crash.
//!
//! Each round is timed by the stall watchdog (`stall.rs`): a flush stuck past the stall limit fails the
//! waiters with `StoreError::Stalled` instead of keeping them forever.

use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::codec::sled_err;
use super::stall::{Watchdog, Writer};
use crate::{StoreError, StoreResult};

type Waiter = oneshot::Sender<Result<(), sled::Error>>;

/// The flusher thread and its queue.
pub(crate) struct GroupCommit {
    queue: Mutex<Option<mpsc::Sender<Waiter>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    flushes: Arc<AtomicU64>,
    watchdog: Arc<Watchdog>,
}

impl GroupCommit {
    /// Starts the flusher thread for `db`, whose data file is `data_file`; its rounds are timed by
    /// `watchdog`.
    pub(crate) fn start(
        db: sled::Db,
        data_file: File,
        watchdog: Arc<Watchdog>,
    ) -> StoreResult<Self> {
        let (tx, rx) = mpsc::channel::<Waiter>();
        let flushes = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&flushes);
        let watched = Arc::clone(&watchdog);
        let thread = std::thread::Builder::new()
            .name("pipecat-store-flush".into())
            .spawn(move || {
                let _exit = watched.exit_guard(Writer::Flusher);
                run(db, data_file, rx, counter, &watched);
            })
            .map_err(|e| StoreError::io("starting the flusher thread", e))?;
        Ok(GroupCommit {
            queue: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            flushes,
            watchdog,
        })
    }

    /// Waits until every write made before this call is on disk; fails with `Stalled` at once while the
    /// store is stalled, and as soon as it becomes stalled while waiting.
    pub(crate) async fn wait(&self) -> StoreResult<()> {
        let answer = self
            .watchdog
            .wait_for(|tx| {
                let queue = self.queue.lock().map_err(|_| StoreError::Closed)?;
                let sender = queue.as_ref().ok_or(StoreError::Closed)?;
                sender.send(tx).map_err(|_| StoreError::Closed)
            })
            .await?;
        answer.map_err(|e| sled_err("flushing to disk", e))
    }

    /// How many flushes (fsync rounds) ran so far.
    pub(crate) fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }

    /// Stops accepting waiters, lets the thread finish its last flush, and joins it; answers the thread
    /// instead when the store is stalled (it may be stuck in a flush).
    pub(crate) fn shutdown(&self) -> Option<JoinHandle<()>> {
        stop_thread(
            &self.queue,
            &self.thread,
            &self.watchdog,
            Writer::Flusher,
            "flusher",
        )
    }
}

/// Closes a writer thread's queue (its loop ends once the queue is drained) and joins the thread, unless
/// the store is stalled first: then the thread, perhaps stuck in a round, is answered rather than joined.
pub(crate) fn stop_thread<T>(
    queue: &Mutex<Option<mpsc::Sender<T>>>,
    thread: &Mutex<Option<JoinHandle<()>>>,
    watchdog: &Watchdog,
    writer: Writer,
    name: &str,
) -> Option<JoinHandle<()>> {
    if let Ok(mut q) = queue.lock() {
        q.take();
    }
    let handle = thread.lock().ok().and_then(|mut t| t.take())?;
    if !watchdog.wait_exit(writer) {
        tracing::error!("the store {name} thread is stuck in a disk write; not waiting for it");
        return Some(handle);
    }
    if handle.join().is_err() {
        tracing::error!("the store {name} thread panicked");
    }
    None
}

/// sled's flush, then `fdatasync` of its data file.
pub(crate) fn flush_durably(db: &sled::Db, data_file: &File) -> Result<(), sled::Error> {
    db.flush()?;
    data_file.sync_data().map_err(sled::Error::Io)
}

fn run(
    db: sled::Db,
    data_file: File,
    rx: mpsc::Receiver<Waiter>,
    flushes: Arc<AtomicU64>,
    watchdog: &Watchdog,
) {
    let mut batch = Vec::new();
    while let Ok(first) = rx.recv() {
        batch.push(first);
        batch.extend(rx.try_iter());
        let result = {
            let _round = watchdog.round(Writer::Flusher);
            flush_durably(&db, &data_file)
        };
        flushes.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = &result {
            tracing::error!(error = %e, waiters = batch.len(), "store flush failed");
        }
        for waiter in batch.drain(..) {
            // A waiter whose request was dropped no longer listens; nothing to do.
            let _ = waiter.send(result.clone());
        }
    }
    if watchdog.is_stalled() {
        tracing::error!("final store flush skipped: the store's disk writes are stalled");
        return;
    }
    let _round = watchdog.round(Writer::Flusher);
    if let Err(e) = flush_durably(&db, &data_file) {
        tracing::error!(error = %e, "final store flush failed");
    }
}
