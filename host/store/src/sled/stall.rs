//! The stall watchdog: a wedged disk write becomes an error, not a hang.
//!
//! sled 0.34 can wedge: when creating a blob file fails (EMFILE, EIO, a full disk) it leaks a log
//! reservation and every later `flush` waits forever. So each writer thread (the group-commit flusher and
//! the run log's writer) records when its current *round* (a flush, a `pwrite` + `fdatasync`, a checkpoint)
//! started, and a watchdog thread marks the store *stalled* once a round has run longer than the stall
//! limit. While stalled, every write that would wait for the disk fails at once with
//! [`StoreError::Stalled`], writers already waiting get that error as soon as the limit passes, and closing
//! the store does not wait for the stuck thread. When the stuck round completes after all, the store is no
//! longer stalled.
//!
//! A writer thread pays one clock read and two atomic stores per round; a waiter one relaxed load to check,
//! and a registration on a [`Notify`] while it waits.

use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, oneshot};

use crate::{StoreError, StoreResult};

/// The stall limit unless the store is opened with another.
pub(crate) const DEFAULT_STALL_LIMIT: Duration = Duration::from_secs(30);

/// Low bit of a round slot: the watchdog found this round over the limit.
const STALLED: u64 = 1;

/// The writer threads the watchdog watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Writer {
    /// The group-commit flusher (`commit.rs`).
    Flusher = 0,
    /// The run log's writer (`wal.rs`).
    Log = 1,
}

impl Writer {
    const ALL: [Writer; 2] = [Writer::Flusher, Writer::Log];

    /// What a round of this thread does, for errors and logs.
    fn what(self) -> &'static str {
        match self {
            Writer::Flusher => "group-commit flush (sled flush + fdatasync)",
            Writer::Log => "run-log write (pwrite + fdatasync, or a checkpoint)",
        }
    }
}

/// What the watchdog thread and the threads waiting on it share under one lock.
#[derive(Default)]
struct State {
    /// The watchdog thread should end.
    stop: bool,
    /// Which writer threads have ended.
    exited: [bool; 2],
}

/// The round clocks of the writer threads, the stall state, and the watchdog thread.
pub(crate) struct Watchdog {
    base: Instant,
    limit: Duration,
    /// Per [`Writer`]: 0 while idle, else `(start in ms since base + 1) << 1`, plus [`STALLED`].
    rounds: [AtomicU64; 2],
    /// Woken (all waiters) when a round is found over the limit.
    stalled: Notify,
    state: Mutex<State>,
    /// Signalled on a stall, a recovery, a writer thread's end, a stop and a released test hold.
    changed: Condvar,
    /// Test hook: rounds that start while this is set block until it is cleared.
    hold: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Watchdog {
    /// Starts the watchdog thread; a round running longer than `limit` (at least 1 ms) stalls the store.
    pub(crate) fn start(limit: Duration) -> StoreResult<Arc<Self>> {
        let watchdog = Arc::new(Watchdog {
            base: Instant::now(),
            limit: limit.max(Duration::from_millis(1)),
            rounds: [AtomicU64::new(0), AtomicU64::new(0)],
            stalled: Notify::new(),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            hold: AtomicBool::new(false),
            thread: Mutex::new(None),
        });
        let watched = Arc::clone(&watchdog);
        let thread = std::thread::Builder::new()
            .name("pipecat-store-watchdog".into())
            .spawn(move || watched.run())
            .map_err(|e| StoreError::io("starting the store watchdog thread", e))?;
        *watchdog.lock_thread() = Some(thread);
        Ok(watchdog)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX >> 2)
    }

    fn limit_ms(&self) -> u64 {
        u64::try_from(self.limit.as_millis()).unwrap_or(u64::MAX >> 2)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_thread(&self) -> MutexGuard<'_, Option<JoinHandle<()>>> {
        self.thread.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks the start of a round of `writer`; the round ends when the guard is dropped.
    pub(crate) fn round(&self, writer: Writer) -> Round<'_> {
        self.rounds[writer as usize].store((self.now_ms() + 1) << 1, Ordering::Relaxed);
        if self.hold.load(Ordering::Relaxed) {
            let _released = self
                .changed
                .wait_while(self.lock(), |_| self.hold.load(Ordering::Relaxed))
                .unwrap_or_else(|p| p.into_inner());
        }
        Round {
            watchdog: self,
            writer,
        }
    }

    /// True while a round has been running longer than the limit.
    pub(crate) fn is_stalled(&self) -> bool {
        self.rounds
            .iter()
            .any(|r| r.load(Ordering::Relaxed) & STALLED != 0)
    }

    /// `Err(Stalled)` while the store is stalled.
    pub(crate) fn check(&self) -> StoreResult<()> {
        if self.is_stalled() {
            Err(self.error())
        } else {
            Ok(())
        }
    }

    /// The error for the round that has been stuck the longest.
    fn error(&self) -> StoreError {
        let now = self.now_ms();
        let stuck = Writer::ALL
            .into_iter()
            .filter_map(|w| {
                let slot = self.rounds[w as usize].load(Ordering::Relaxed);
                (slot & STALLED != 0).then(|| (w, now.saturating_sub((slot >> 1) - 1)))
            })
            .max_by_key(|&(_, ms)| ms);
        let (what, ms) = match stuck {
            Some((w, ms)) => (w.what(), ms),
            None => ("disk write", self.limit_ms()),
        };
        StoreError::Stalled {
            what,
            secs: ms / 1000,
        }
    }

    /// Checks the stall state, hands a request to a writer thread with `queue`, and waits for its answer;
    /// fails with [`StoreError::Stalled`] instead of queuing while the store is stalled, and as soon as it
    /// becomes stalled while waiting.
    pub(crate) async fn wait_for<T>(
        &self,
        queue: impl FnOnce(oneshot::Sender<T>) -> StoreResult<()>,
    ) -> StoreResult<T> {
        // Created before the check, so a stall found between the check and the first poll still wakes it.
        let stalled = pin!(self.stalled.notified());
        self.check()?;
        let (tx, rx) = oneshot::channel();
        queue(tx)?;
        tokio::select! {
            biased;
            answer = rx => answer.map_err(|_| StoreError::Closed),
            () = stalled => Err(self.error()),
        }
    }

    /// Called by a writer thread when it ends (also on a panic, through the guard).
    pub(crate) fn exit_guard(self: &Arc<Self>, writer: Writer) -> ExitGuard {
        ExitGuard {
            watchdog: Arc::clone(self),
            writer,
        }
    }

    /// Waits until `writer`'s thread has ended (`true`), or the store is stalled (`false`): a thread may be
    /// stuck in a round, and it is not waited for then.
    pub(crate) fn wait_exit(&self, writer: Writer) -> bool {
        let state = self
            .changed
            .wait_while(self.lock(), |s| {
                !s.exited[writer as usize] && !self.is_stalled()
            })
            .unwrap_or_else(|p| p.into_inner());
        state.exited[writer as usize]
    }

    /// Test hook: rounds that start from now on block until [`Watchdog::release`].
    pub(crate) fn hold(&self) {
        self.hold.store(true, Ordering::Relaxed);
    }

    /// Test hook: lets held rounds go on, and waits until they have completed if the store is stalled.
    pub(crate) fn release(&self) {
        let state = self.lock();
        self.hold.store(false, Ordering::Relaxed);
        self.changed.notify_all();
        let _recovered = self
            .changed
            .wait_while(state, |_| self.is_stalled())
            .unwrap_or_else(|p| p.into_inner());
    }

    /// Stops and joins the watchdog thread (which never blocks on the disk).
    pub(crate) fn shutdown(&self) {
        self.lock().stop = true;
        self.changed.notify_all();
        let handle = self.lock_thread().take();
        if let Some(handle) = handle
            && handle.join().is_err()
        {
            tracing::error!("the store watchdog thread panicked");
        }
    }

    /// The watchdog thread: wakes at the earliest moment a round could pass the limit.
    fn run(&self) {
        let limit = self.limit_ms();
        let mut state = self.lock();
        while !state.stop {
            let now = self.now_ms();
            let mut next = now + limit;
            for writer in Writer::ALL {
                let slot = &self.rounds[writer as usize];
                let started = slot.load(Ordering::Relaxed);
                if started == 0 || started & STALLED != 0 {
                    continue;
                }
                let deadline = (started >> 1) - 1 + limit;
                if now < deadline {
                    next = next.min(deadline);
                    continue;
                }
                // Only the same round: if it ended meanwhile, the slot changed and nothing is stalled.
                if slot
                    .compare_exchange(
                        started,
                        started | STALLED,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    )
                    .is_ok()
                {
                    tracing::error!(
                        writer = writer.what(),
                        secs = (now - ((started >> 1) - 1)) / 1000,
                        "the store's disk writes have not completed within the stall limit: writes fail \
                         until they do; check the disk and this log, then restart the server"
                    );
                    self.stalled.notify_waiters();
                    self.changed.notify_all();
                }
            }
            let sleep = Duration::from_millis(next.saturating_sub(now).max(1));
            state = self
                .changed
                .wait_timeout(state, sleep)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// A round in progress; dropping it ends the round (and a stall it caused).
pub(crate) struct Round<'a> {
    watchdog: &'a Watchdog,
    writer: Writer,
}

impl Drop for Round<'_> {
    fn drop(&mut self) {
        let slot = self.watchdog.rounds[self.writer as usize].swap(0, Ordering::Relaxed);
        if slot & STALLED != 0 {
            let secs = self.watchdog.now_ms().saturating_sub((slot >> 1) - 1) / 1000;
            tracing::warn!(
                writer = self.writer.what(),
                secs,
                "a stalled store disk write completed after all; the store accepts writes again"
            );
            let _state = self.watchdog.lock();
            self.watchdog.changed.notify_all();
        }
    }
}

/// Tells the watchdog that a writer thread ended when dropped.
pub(crate) struct ExitGuard {
    watchdog: Arc<Watchdog>,
    writer: Writer,
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        self.watchdog.lock().exited[self.writer as usize] = true;
        self.watchdog.changed.notify_all();
    }
}
