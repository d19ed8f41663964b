//! [`AppState`]: everything a handler needs, shared behind one `Arc`.

use std::collections::BTreeMap;
use std::sync::Arc;

use pipecat_store::{DynStore, KeyHash};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::LimitsConfig;
use crate::limits::RateLimiter;
use crate::runtime::Runtime;

/// The shared state of the server. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The contents of [`AppState`].
pub struct Shared {
    /// The persistence backend.
    pub store: DynStore,
    /// Plugins, engine and providers.
    pub runtime: Arc<Runtime>,
    /// Plan name → monthly run limit (`None`: unlimited).
    pub plans: BTreeMap<String, Option<u64>>,
    /// Request and run limits.
    pub limits: LimitsConfig,
    /// Hash of the operator's admin key.
    pub admin_hash: KeyHash,
    /// Per-key request rate limiter.
    pub rate: RateLimiter,
    /// One permit per run allowed to execute at once.
    pub run_slots: Arc<Semaphore>,
    /// Cancelled when the server starts shutting down.
    pub shutdown: CancellationToken,
    /// Tracks runs in flight so shutdown can drain them.
    pub runs_in_flight: TaskTracker,
}

impl AppState {
    /// Builds the state.
    pub fn new(
        store: DynStore,
        runtime: Arc<Runtime>,
        plans: BTreeMap<String, Option<u64>>,
        limits: LimitsConfig,
        admin_hash: KeyHash,
    ) -> Self {
        let rate = RateLimiter::new(limits.rate_per_key_per_second, limits.rate_burst);
        let run_slots = Arc::new(Semaphore::new(limits.max_concurrent_runs.max(1)));
        Self(Arc::new(Shared {
            store,
            runtime,
            plans,
            limits,
            admin_hash,
            rate,
            run_slots,
            shutdown: CancellationToken::new(),
            runs_in_flight: TaskTracker::new(),
        }))
    }

    /// The monthly run limit of a plan name (`None`: unlimited or unknown plan).
    pub fn plan_limit(&self, plan: &str) -> Option<u64> {
        self.plans.get(plan).copied().flatten()
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}
