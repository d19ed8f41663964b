//! [`AppState`]: everything a handler needs, shared behind one `Arc`.

use std::collections::BTreeMap;
use std::sync::Arc;

use pipecat_store::{DynStore, KeyHash};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{LimitsConfig, MonitoringConfig, RetentionConfig};
use crate::limits::{AccountSlots, RateLimiter};
use crate::live::{LiveRuns, StreamingConfig};
use crate::runtime::Runtime;
use crate::stats::Monitor;
use crate::webhook::WebhookConfig;

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
    /// Each account's share of the run slots.
    pub account_slots: AccountSlots,
    /// Cancelled when the server starts shutting down.
    pub shutdown: CancellationToken,
    /// Tracks runs in flight so shutdown can drain them.
    pub runs_in_flight: TaskTracker,
    /// Tracks open WebSocket connections so shutdown waits for their close frames.
    pub ws_connections: TaskTracker,
    /// The runs executing now (cancel tokens, event logs).
    pub live: LiveRuns,
    /// `[streaming]`: pings and WebSocket limits.
    pub streaming: StreamingConfig,
    /// `[webhooks]`: signing secret, retries, outbound rules.
    pub webhooks: WebhookConfig,
    /// Run statistics and Prometheus metrics.
    pub monitor: Monitor,
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
        let account_slots = AccountSlots::new(limits.max_concurrent_runs_per_account);
        let monitor = Monitor::start(store.clone(), MonitoringConfig::default());
        Self(Arc::new(Shared {
            store,
            runtime,
            plans,
            limits,
            admin_hash,
            rate,
            run_slots,
            account_slots,
            shutdown: CancellationToken::new(),
            runs_in_flight: TaskTracker::new(),
            ws_connections: TaskTracker::new(),
            live: LiveRuns::default(),
            streaming: StreamingConfig::default(),
            webhooks: WebhookConfig::default(),
            monitor,
        }))
    }

    /// The same state with these streaming and webhook settings (call before the state is shared).
    pub fn with_run_control(mut self, streaming: StreamingConfig, webhooks: WebhookConfig) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.0) {
            shared.streaming = streaming;
            shared.webhooks = webhooks;
        } else {
            tracing::warn!("run-control settings ignored: the state is already shared");
        }
        self
    }

    /// The same state with these monitoring settings, and the retention task started (call before the
    /// state is shared).
    pub fn with_monitoring(
        mut self,
        monitoring: MonitoringConfig,
        retention: RetentionConfig,
    ) -> Self {
        crate::stats::retention::start(self.store.clone(), retention, self.shutdown.clone());
        if let Some(shared) = Arc::get_mut(&mut self.0) {
            shared.monitor = Monitor::start(shared.store.clone(), monitoring);
        } else {
            tracing::warn!("monitoring settings ignored: the state is already shared");
        }
        self
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
