//! A tokio runtime of its own for guest code, on threads the OS schedules at a lower priority.
//!
//! Tool calls of one tenant must not starve the requests of others. Guests yield every epoch tick, but on
//! the server's runtime a yielded guest goes back into the same run queue as every HTTP request and store
//! write, so a few spinning guests add their slices to everyone's latency. Here each call runs as a task of
//! this runtime instead (once it has run for a couple of milliseconds), whose worker threads are `nice`d:
//! when the server's own threads have work, the kernel runs them first; when they are idle, guests get all
//! the cores.

use std::future::Future;
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::runtime::{Builder, Runtime};
use tokio::task::JoinHandle;

use crate::SandboxError;

/// How long a call may run on the caller's runtime before it moves to the guest runtime.
const INLINE_BUDGET: Duration = Duration::from_millis(2);

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

    /// Runs `future`, a guest call: inline on the caller's runtime while it is short, then — once it has
    /// run for [`INLINE_BUDGET`] and yields — on the guest runtime. Short calls (almost all) pay no
    /// cross-thread hand-off (two thread wake-ups, ~50 µs on these machines, more than a whole call); a
    /// spinning or slow guest leaves the server's threads at its first epoch yield past the budget.
    /// Dropping the returned future drops or aborts the call, so cancelling it still stops the guest at
    /// the next epoch tick. `None` when the task panicked or was aborted.
    pub(crate) async fn run<F>(&self, future: F) -> Option<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let mut future = Box::pin(future);
        let started = Instant::now();
        let inline = std::future::poll_fn(|cx| match future.as_mut().poll(cx) {
            Poll::Ready(output) => Poll::Ready(Some(output)),
            Poll::Pending if started.elapsed() >= INLINE_BUDGET => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        })
        .await;
        if inline.is_some() {
            return inline;
        }
        let runtime = self.runtime.as_ref()?;
        let mut task = AbortOnDrop(runtime.spawn(future));
        (&mut task.0).await.ok()
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
