//! The wasmtime engine: Cranelift, fuel, epoch interruption driven by a ticker thread, and the pooling
//! allocator when the machine lets it reserve its address space (probed at start, on-demand otherwise).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig,
    Strategy,
};

use crate::{SandboxConfig, SandboxError};

/// How often the epoch advances: the granularity of deadlines and of yielding to the async runtime, so
/// also how long a guest can hold a thread of the caller's runtime past the executor's inline budget
/// (10 ms before: one attacker slice was a victim's whole p99, docs/benchmarks.md).
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Which instance allocator the engine uses, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolInfo {
    /// Whether the pooling allocator is in use.
    pub pooling: bool,
    /// Instances that may run at once with pooling (`None` with on-demand allocation: no fixed limit).
    pub max_concurrent_instances: Option<u32>,
    /// Why pooling is off, when it was wanted but could not be set up.
    pub fallback_reason: Option<String>,
}

fn base_config() -> Config {
    let mut config = Config::new();
    config
        .strategy(Strategy::Cranelift)
        .cranelift_opt_level(OptLevel::Speed)
        .wasm_component_model(true)
        .consume_fuel(true)
        .epoch_interruption(true)
        .parallel_compilation(true)
        .max_wasm_stack(512 << 10)
        .async_stack_size(2 << 20);
    config
}

fn pooling_config(sandbox: &SandboxConfig) -> PoolingAllocationConfig {
    let instances = sandbox.max_concurrent_instances.max(1);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(instances)
        // A Rust component holds a handful of core instances (the program and wit-component shims).
        .total_core_instances(instances.saturating_mul(8))
        .total_memories(instances.saturating_mul(2))
        .total_tables(instances.saturating_mul(8))
        .total_stacks(instances)
        .total_gc_heaps(instances)
        .max_memory_size(sandbox.max_memory_bytes)
        // Keep the first 4 MiB of a slot resident: reusing a slot then costs a memset of what the guest
        // used, not page faults and an `madvise` (which, with calls on other threads, sends TLB-shootdown
        // IPIs to every core). A Rust plugin touches a little over 1 MiB (its 1 MiB stack plus heap): with
        // 1 MiB kept, 2 threads made 24,000 calls/s; with 4 MiB, 65,800 (docs/benchmarks.md). The cost is
        // up to 4 MiB resident per slot that has been used, i.e. per concurrent call at peak.
        .linear_memory_keep_resident(4 << 20)
        .table_keep_resident(64 << 10)
        .async_stack_keep_resident(64 << 10)
        // With Linux's PAGEMAP_SCAN (6.7+) only the pages a call wrote are reset, not every byte up to
        // the memory's size: the memset was 5 % of a whole tool run's CPU. Older kernels fall back.
        .pagemap_scan(Enabled::Auto);
    pool
}

/// Creates the engine, trying the pooling allocator first when `config.pooling` is set.
pub(crate) fn create(config: &SandboxConfig) -> Result<(Engine, PoolInfo), SandboxError> {
    let mut fallback_reason = None;
    if config.pooling {
        let mut pooled = base_config();
        pooled.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling_config(config)));
        match Engine::new(&pooled) {
            Ok(engine) => {
                let info = PoolInfo {
                    pooling: true,
                    max_concurrent_instances: Some(config.max_concurrent_instances.max(1)),
                    fallback_reason: None,
                };
                return Ok((engine, info));
            }
            Err(error) => {
                tracing::warn!(%error, "pooling allocator unavailable, using on-demand allocation");
                fallback_reason = Some(format!("{error:#}"));
            }
        }
    }
    let mut on_demand = base_config();
    on_demand.allocation_strategy(InstanceAllocationStrategy::OnDemand);
    let engine = Engine::new(&on_demand).map_err(|e| SandboxError::Engine(format!("{e:#}")))?;
    Ok((
        engine,
        PoolInfo {
            pooling: false,
            max_concurrent_instances: None,
            fallback_reason,
        },
    ))
}

/// Advances the engine's epoch every [`EPOCH_TICK`] while guest code may run, until dropped.
///
/// A tick every millisecond costs about 17 ms of CPU per second on an idle server (a timer wake-up is dear
/// in a VM), so the thread sleeps once no call has been in flight for [`IDLE_TICKS`] ticks, and the next
/// call wakes it (see [`EpochTicker::busy`]).
pub(crate) struct EpochTicker {
    state: Arc<TickerState>,
    thread: Option<JoinHandle<()>>,
}

/// Ticks without a call in flight before the ticker sleeps.
const IDLE_TICKS: u32 = 100;

struct TickerState {
    stop: AtomicBool,
    /// Calls in flight (guards of [`EpochTicker::busy`] alive).
    running: AtomicUsize,
    /// The ticker is asleep (or about to be) until a call wakes it.
    asleep: AtomicBool,
}

/// Keeps the epoch ticking while alive: held by every call for its whole run.
pub(crate) struct Ticking<'a>(&'a EpochTicker);

impl Drop for Ticking<'_> {
    fn drop(&mut self) {
        self.0.state.running.fetch_sub(1, Ordering::SeqCst);
    }
}

impl EpochTicker {
    pub(crate) fn start(engine: Engine) -> Result<Self, SandboxError> {
        let state = Arc::new(TickerState {
            stop: AtomicBool::new(false),
            running: AtomicUsize::new(0),
            asleep: AtomicBool::new(false),
        });
        let shared = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("pipecat-epoch".into())
            .spawn(move || tick(&engine, &shared))
            .map_err(|e| SandboxError::Engine(format!("cannot start the epoch thread: {e}")))?;
        Ok(Self {
            state,
            thread: Some(thread),
        })
    }

    /// Marks a call in flight for as long as the guard lives, waking the ticker if it sleeps.
    pub(crate) fn busy(&self) -> Ticking<'_> {
        self.state.running.fetch_add(1, Ordering::SeqCst);
        // Sequentially consistent with the ticker's `asleep` store and `running` load: either it sees
        // this call before it parks, or this sees that it parks and wakes it (an early `unpark` makes the
        // coming `park` return at once).
        if self.state.asleep.load(Ordering::SeqCst)
            && let Some(thread) = &self.thread
        {
            thread.thread().unpark();
        }
        Ticking(self)
    }
}

fn tick(engine: &Engine, state: &TickerState) {
    let mut idle = 0;
    while !state.stop.load(Ordering::SeqCst) {
        if state.running.load(Ordering::SeqCst) > 0 {
            idle = 0;
        } else if idle < IDLE_TICKS {
            idle += 1;
        } else {
            state.asleep.store(true, Ordering::SeqCst);
            if state.running.load(Ordering::SeqCst) == 0 && !state.stop.load(Ordering::SeqCst) {
                std::thread::park();
            }
            state.asleep.store(false, Ordering::SeqCst);
            idle = 0;
        }
        std::thread::park_timeout(EPOCH_TICK);
        engine.increment_epoch();
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}
