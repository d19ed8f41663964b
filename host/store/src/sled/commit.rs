//! Group commit: writers queue behind one flusher thread; each flush makes everyone queued before it
//! started durable with a single `fsync`, and writers that arrive during a flush wait for the next one.
//!
//! sled 0.34's `flush` ends in `sync_file_range`, which neither flushes the device's write cache nor
//! the file's metadata, so each round also runs `fdatasync` on sled's data file: an acknowledged write
//! survives a power cut, not only a process crash.

use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::codec::sled_err;
use crate::{StoreError, StoreResult};

type Waiter = oneshot::Sender<Result<(), sled::Error>>;

/// The flusher thread and its queue.
pub(crate) struct GroupCommit {
    queue: Mutex<Option<mpsc::Sender<Waiter>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    flushes: Arc<AtomicU64>,
}

impl GroupCommit {
    /// Starts the flusher thread for `db`, whose data file is `data_file`.
    pub(crate) fn start(db: sled::Db, data_file: File) -> StoreResult<Self> {
        let (tx, rx) = mpsc::channel::<Waiter>();
        let flushes = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&flushes);
        let thread = std::thread::Builder::new()
            .name("pipecat-store-flush".into())
            .spawn(move || run(db, data_file, rx, counter))
            .map_err(|e| StoreError::io("starting the flusher thread", e))?;
        Ok(GroupCommit {
            queue: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            flushes,
        })
    }

    /// Waits until every write made before this call is on disk.
    pub(crate) async fn wait(&self) -> StoreResult<()> {
        let (tx, rx) = oneshot::channel();
        {
            let queue = self.queue.lock().map_err(|_| StoreError::Closed)?;
            let sender = queue.as_ref().ok_or(StoreError::Closed)?;
            sender.send(tx).map_err(|_| StoreError::Closed)?;
        }
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(sled_err("flushing to disk", e)),
            Err(_) => Err(StoreError::Closed),
        }
    }

    /// How many flushes (fsync rounds) ran so far.
    pub(crate) fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }

    /// Stops accepting waiters, lets the thread finish its last flush, and joins it.
    pub(crate) fn shutdown(&self) {
        stop_thread(&self.queue, &self.thread, "flusher");
    }
}

/// Closes a writer thread's queue (its loop ends once the queue is drained) and joins the thread.
pub(crate) fn stop_thread<T>(
    queue: &Mutex<Option<mpsc::Sender<T>>>,
    thread: &Mutex<Option<JoinHandle<()>>>,
    name: &str,
) {
    if let Ok(mut q) = queue.lock() {
        q.take();
    }
    let handle = thread.lock().ok().and_then(|mut t| t.take());
    if let Some(handle) = handle
        && handle.join().is_err()
    {
        tracing::error!("the store {name} thread panicked");
    }
}

/// sled's flush, then `fdatasync` of its data file.
pub(crate) fn flush_durably(db: &sled::Db, data_file: &File) -> Result<(), sled::Error> {
    db.flush()?;
    data_file.sync_data().map_err(sled::Error::Io)
}

fn run(db: sled::Db, data_file: File, rx: mpsc::Receiver<Waiter>, flushes: Arc<AtomicU64>) {
    let mut batch = Vec::new();
    while let Ok(first) = rx.recv() {
        batch.push(first);
        batch.extend(rx.try_iter());
        let result = flush_durably(&db, &data_file);
        flushes.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = &result {
            tracing::error!(error = %e, waiters = batch.len(), "store flush failed");
        }
        for waiter in batch.drain(..) {
            // A waiter whose request was dropped no longer listens; nothing to do.
            let _ = waiter.send(result.clone());
        }
    }
    if let Err(e) = flush_durably(&db, &data_file) {
        tracing::error!(error = %e, "final store flush failed");
    }
}
