//! A tokio runtime of its own for guest code, on threads the OS schedules at a lower priority.
//!
//! Tool calls of one tenant must not starve the requests of others. Guests yield every epoch tick, but on
//! the server's runtime a yielded guest goes back into the same run queue as every HTTP request and store
//! write, so a few spinning guests add their slices to everyone's latency. Here each call runs as a task of
//! this runtime instead (once it has run for a millisecond, or at once for a plugin that was slow lately),
//! whose worker threads are `nice`d: when the server's own threads have work, the kernel runs them first;
//! when they are idle, guests get all the cores.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::runtime::{Builder, Runtime};
use tokio::task::JoinHandle;

use crate::SandboxError;

/// How long a call may run on the caller's runtime before it moves to the guest runtime. A guest yields
/// only at an epoch tick ([`EPOCH_TICK`](crate::engine::EPOCH_TICK), 1 ms), so it leaves the caller's
/// thread 1–2 ms after it started (unless one instruction takes longer, see [`SLOW_CPU`]).
const INLINE_BUDGET: Duration = Duration::from_millis(1);

/// CPU time after which a call marks its plugin slow. Twice the budget: the first call on a fresh thread
/// or instance slot can spend about a millisecond in page faults, and a hiccup like that should not send
/// the plugin's next calls through the hand-off.
const SLOW_CPU: Duration = Duration::from_millis(2);

/// How long the calls of a plugin marked slow start on the guest runtime.
const SLOW_MEMORY: Duration = Duration::from_secs(10);

/// `nice` added to the server's own for the guest threads (0 is normal, 19 the lowest priority).
const GUEST_NICE: i32 = 10;

/// What the executor remembers of one plugin's calls: until when they start on the guest runtime.
#[derive(Debug, Default)]
pub(crate) struct Pace {
    /// Milliseconds since the executor started; 0 when no call of the plugin was slow.
    slow_until_ms: AtomicU64,
}

/// The guest runtime. Dropping it stops its threads without waiting for them.
pub(crate) struct Executor {
    runtime: Option<Runtime>,
    started: Instant,
}

impl Executor {
    /// Starts `threads` worker threads (at least one).
    pub(crate) fn start(threads: usize) -> Result<Self, SandboxError> {
        // Relative to the priority of the thread that starts the sandbox, taken once here: a server run
        // under `nice` keeps its guests below it, and threads the guest runtime starts later do not
        // lower themselves again.
        let guest_nice = guest_priority();
        let runtime = Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("pipecat-wasm")
            .on_thread_start(move || lower_priority(guest_nice))
            .enable_all()
            .build()
            .map_err(|e| SandboxError::Engine(format!("cannot start the guest runtime: {e}")))?;
        Ok(Self {
            runtime: Some(runtime),
            started: Instant::now(),
        })
    }

    /// Runs `future`, a guest call of the plugin whose history is `pace`: inline on the caller's runtime
    /// while it is short, then — once it has run for [`INLINE_BUDGET`] and yields — on the guest runtime.
    /// Short calls (almost all) pay no cross-thread hand-off (two thread wake-ups, ~50 µs on these
    /// machines, more than a whole call); a spinning or slow guest leaves the server's threads at its first
    /// epoch yield past the budget.
    ///
    /// A call that used more than [`SLOW_CPU`] marks its plugin slow, and the plugin's calls of the next
    /// [`SLOW_MEMORY`] start on the guest runtime: a guest can hold a thread for several milliseconds
    /// between two yields (one `memory.copy` or `memory.fill` of many megabytes, the host copying out a
    /// huge result, a call that does all that and returns before any yield), and a plugin known to be
    /// slow does not get that chance again. CPU time of the polls, not wall time, so that a short call
    /// that was merely preempted on a busy machine does not count.
    ///
    /// Dropping the returned future drops or aborts the call, so cancelling it still stops the guest at
    /// the next epoch tick. `None` when the task panicked or was aborted.
    pub(crate) async fn run<F>(&self, pace: &Pace, future: F) -> Option<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let runtime = self.runtime.as_ref()?;
        let started = Instant::now();
        let mut metered = Metered {
            future: Box::pin(future),
            cpu: Duration::ZERO,
        };
        if self.millis(started) >= pace.slow_until_ms.load(Ordering::Relaxed) {
            let inline = std::future::poll_fn(|cx| match Pin::new(&mut metered).poll(cx) {
                Poll::Ready(output) => Poll::Ready(Some(output)),
                Poll::Pending if started.elapsed() >= INLINE_BUDGET => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            })
            .await;
            if metered.cpu >= SLOW_CPU {
                self.remember_slow(pace);
            }
            if inline.is_some() {
                return inline;
            }
        }
        let mut task = AbortOnDrop(runtime.spawn(async move {
            let output = (&mut metered).await;
            (output, metered.cpu)
        }));
        let (output, cpu) = (&mut task.0).await.ok()?;
        if cpu >= SLOW_CPU {
            self.remember_slow(pace);
        }
        Some(output)
    }

    fn millis(&self, at: Instant) -> u64 {
        u64::try_from(at.duration_since(self.started).as_millis()).unwrap_or(u64::MAX)
    }

    fn remember_slow(&self, pace: &Pace) {
        let until = self
            .millis(Instant::now())
            .saturating_add(u64::try_from(SLOW_MEMORY.as_millis()).unwrap_or(u64::MAX));
        pace.slow_until_ms.store(until, Ordering::Relaxed);
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A call with the CPU time its thread spent polling it. The poll that finishes the call is counted only
/// when it took [`SLOW_CPU`] of wall time, so a short call pays for one read of the thread's CPU clock
/// (about 0.5 µs: a system call), not two.
struct Metered<F: Future> {
    future: Pin<Box<F>>,
    cpu: Duration,
}

impl<F: Future> Future for Metered<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let (cpu, wall) = (thread_cpu_time(), Instant::now());
        let poll = self.future.as_mut().poll(cx);
        if poll.is_pending() || wall.elapsed() >= SLOW_CPU {
            self.cpu += thread_cpu_time().saturating_sub(cpu);
        }
        poll
    }
}

/// A task of the guest runtime, aborted when its caller stops waiting for it.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// CPU time (user and system) the calling thread has used.
#[cfg(unix)]
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; the call only writes it.
    let result = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    if result != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(now.tv_sec).unwrap_or(0),
        u32::try_from(now.tv_nsec).unwrap_or(0),
    )
}

/// Without a thread CPU clock: wall time (a preempted call counts as busy).
#[cfg(not(unix))]
fn thread_cpu_time() -> Duration {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed()
}

/// The `nice` value for guest threads: the calling thread's plus [`GUEST_NICE`], at most 19.
#[cfg(target_os = "linux")]
fn guest_priority() -> i32 {
    // SAFETY: a plain system call with no pointers. It returns the nice value (-1 is a valid one); its
    // only error, bad arguments, cannot happen with these.
    let current = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    current.saturating_add(GUEST_NICE).min(19)
}

#[cfg(not(target_os = "linux"))]
fn guest_priority() -> i32 {
    GUEST_NICE
}

#[cfg(target_os = "linux")]
fn lower_priority(nice: i32) {
    // On Linux `setpriority(PRIO_PROCESS, 0, …)` applies to the calling thread only.
    // SAFETY: a plain system call with no pointers; a failure only leaves the priority unchanged.
    let result = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
    if result != 0 {
        tracing::debug!("could not lower the priority of a guest thread");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority(_nice: i32) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_guest_thread() -> bool {
        std::thread::current().name() == Some("pipecat-wasm")
    }

    /// Spins on its thread until it has used `cpu` of CPU time (not wall time: on a loaded machine a
    /// thread gets a fraction of the wall clock, and the executor meters CPU).
    fn spin(cpu: Duration) {
        let start = thread_cpu_time();
        while thread_cpu_time().saturating_sub(start) < cpu {
            std::hint::spin_loop();
        }
    }

    /// Uses `cpu` of CPU time, yielding to tokio every 100 µs of it (like a guest at its epoch yields).
    async fn burn(cpu: Duration) -> bool {
        let slice = Duration::from_micros(100);
        let mut used = Duration::ZERO;
        while used < cpu {
            spin(slice);
            used += slice;
            tokio::task::yield_now().await;
        }
        on_guest_thread()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_short_call_runs_inline_and_leaves_its_plugin_fast() {
        let executor = Executor::start(1).expect("executor");
        let pace = Pace::default();
        for _ in 0..3 {
            assert_eq!(
                executor.run(&pace, async { on_guest_thread() }).await,
                Some(false)
            );
        }
        assert_eq!(pace.slow_until_ms.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_busy_call_moves_and_the_plugins_next_call_starts_on_the_guest_runtime() {
        let executor = Executor::start(1).expect("executor");
        let pace = Pace::default();
        assert_eq!(
            executor.run(&pace, burn(Duration::from_millis(20))).await,
            Some(true)
        );
        assert!(pace.slow_until_ms.load(Ordering::Relaxed) > 0);
        assert_eq!(
            executor.run(&pace, async { on_guest_thread() }).await,
            Some(true)
        );
        // Another plugin is not affected.
        assert_eq!(
            executor
                .run(&Pace::default(), async { on_guest_thread() })
                .await,
            Some(false)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_call_busy_for_long_in_one_poll_marks_its_plugin_slow() {
        let executor = Executor::start(1).expect("executor");
        let pace = Pace::default();
        let busy = async {
            spin(Duration::from_millis(20));
            on_guest_thread()
        };
        assert_eq!(executor.run(&pace, busy).await, Some(false));
        assert!(pace.slow_until_ms.load(Ordering::Relaxed) > 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_call_that_waits_moves_but_does_not_mark_its_plugin_slow() {
        let executor = Executor::start(1).expect("executor");
        let pace = Pace::default();
        // Waits (as on HTTP), then yields once more: the call moves at that yield, past the budget.
        let waiting = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            tokio::task::yield_now().await;
            on_guest_thread()
        };
        assert_eq!(executor.run(&pace, waiting).await, Some(true));
        assert_eq!(pace.slow_until_ms.load(Ordering::Relaxed), 0);
        assert_eq!(
            executor.run(&pace, async { on_guest_thread() }).await,
            Some(false)
        );
    }

    #[test]
    fn the_thread_cpu_clock_counts_work_not_sleep() {
        let start = thread_cpu_time();
        std::thread::sleep(Duration::from_millis(30));
        let slept = thread_cpu_time().saturating_sub(start);
        assert!(slept < Duration::from_millis(10), "{slept:?}");
        let start = thread_cpu_time();
        let wall = Instant::now();
        while wall.elapsed() < Duration::from_millis(20) {
            std::hint::spin_loop();
        }
        assert!(thread_cpu_time() > start, "no CPU time counted");
    }
}
