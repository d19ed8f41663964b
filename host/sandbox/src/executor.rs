//! A tokio runtime of its own for guest code, on threads the OS schedules at a lower priority.
//!
//! Tool calls of one tenant must not starve the requests of others. Guests yield every epoch tick, but on
//! the server's runtime a yielded guest goes back into the same run queue as every HTTP request and store
//! write, so a few spinning guests add their slices to everyone's latency. Here each call runs as a task of
//! this runtime instead, whose worker threads are `nice`d: when the server's own threads have work, the
//! kernel runs them first; when they are idle, guests get all the cores.

use std::future::Future;

use tokio::runtime::{Builder, Runtime};
use tokio::task::JoinHandle;

use crate::SandboxError;

/// `nice` value of the guest threads (0 is normal, 19 the lowest priority).
const GUEST_NICE: i32 = 10;

/// The guest runtime. Dropping it stops its threads without waiting for them.
pub(crate) struct Executor {
    runtime: Option<Runtime>,
}

impl Executor {
    /// Starts `threads` worker threads (at least one).
    pub(crate) fn start(threads: usize) -> Result<Self, SandboxError> {
        let runtime = Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("pipecat-wasm")
            .on_thread_start(lower_priority)
            .enable_all()
            .build()
            .map_err(|e| SandboxError::Engine(format!("cannot start the guest runtime: {e}")))?;
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    /// Runs `future` on the guest runtime. Dropping the returned future aborts the task, so cancelling a
    /// call still stops its guest at the next epoch tick. `None` when the task panicked or was aborted.
    pub(crate) async fn run<F>(&self, future: F) -> Option<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let runtime = self.runtime.as_ref()?;
        let task = AbortOnDrop(runtime.spawn(future));
        (&mut { task }.0).await.ok()
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(target_os = "linux")]
fn lower_priority() {
    // On Linux `setpriority(PRIO_PROCESS, 0, …)` applies to the calling thread only.
    // SAFETY: a plain system call with no pointers; a failure only leaves the priority unchanged.
    let result = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, GUEST_NICE) };
    if result != 0 {
        tracing::debug!("could not lower the priority of a guest thread");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}
