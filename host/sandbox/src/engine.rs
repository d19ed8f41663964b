//! The wasmtime engine: Cranelift, fuel, epoch interruption driven by a ticker thread, and the pooling
//! allocator when the machine lets it reserve its address space (probed at start, on-demand otherwise).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig, Strategy,
};

use crate::{SandboxConfig, SandboxError};

/// How often the epoch advances: the granularity of deadlines and of yielding to the async runtime.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

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
        .async_stack_keep_resident(64 << 10);
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

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub(crate) fn start(engine: Engine) -> Result<Self, SandboxError> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("pipecat-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::park_timeout(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .map_err(|e| SandboxError::Engine(format!("cannot start the epoch thread: {e}")))?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}
