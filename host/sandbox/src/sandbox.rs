//! The sandbox: one engine, linker and HTTP client shared by every plugin, and the loaded plugins by id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;
use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker};

use crate::engine::{EpochTicker, PoolInfo};
use crate::executor::Executor;
use crate::host::HostState;
use crate::load::{check_bytes, compile, engine_hash};
use crate::{LoadError, Plugin, SandboxConfig, SandboxError};

/// What plugins share: engine, linker, HTTP client, settings.
pub(crate) struct Shared {
    pub(crate) engine: Engine,
    pub(crate) engine_hash: String,
    pub(crate) linker: Linker<HostState>,
    pub(crate) http: reqwest::Client,
    pub(crate) config: SandboxConfig,
    pub(crate) compile_permits: Arc<Semaphore>,
    pub(crate) pool: PoolInfo,
    /// Where tool calls run (see [`crate::executor`]).
    pub(crate) executor: Executor,
    /// Advances the epoch while calls run.
    pub(crate) ticker: EpochTicker,
}

/// Loads plugins and runs their tools in isolation.
pub struct Sandbox {
    shared: Arc<Shared>,
    plugins: Mutex<HashMap<String, Arc<Plugin>>>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("pool", &self.shared.pool)
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// Creates the engine (pooling when possible), links WASI (granting nothing) and the plugin interfaces,
    /// and starts the epoch ticker.
    pub fn new(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        if let Some(dir) = &config.cache_dir {
            std::fs::create_dir_all(dir)?;
        }
        let (engine, pool) = crate::engine::create(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| SandboxError::Linker(format!("{e:#}")))?;
        crate::bindings::Plugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .map_err(|e| SandboxError::Linker(format!("{e:#}")))?;
        let http = crate::http::client(config.allow_private_networks)
            .map_err(|e| SandboxError::Http(e.to_string()))?;
        let shared = Shared {
            engine_hash: engine_hash(&engine),
            ticker: EpochTicker::start(engine.clone())?,
            engine,
            linker,
            http,
            compile_permits: Arc::new(Semaphore::new(config.max_concurrent_compiles.max(1))),
            executor: Executor::start(
                std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
            )?,
            config,
            pool,
        };
        Ok(Sandbox {
            shared: Arc::new(shared),
            plugins: Mutex::new(HashMap::new()),
        })
    }

    /// Validates, compiles (or loads from the cache) and links `bytes`, and lists its tools in the sandbox.
    /// Loading the same bytes again returns the plugin already loaded.
    pub async fn load(&self, bytes: &[u8]) -> Result<Arc<Plugin>, LoadError> {
        check_bytes(bytes, self.shared.config.max_component_bytes)?;
        let id = blake3::hash(bytes).to_hex().to_string();
        if let Some(plugin) = self.get(&id) {
            return Ok(plugin);
        }
        let (component, cache_hit) = compile(&self.shared, bytes, &id).await?;
        let plugin = Arc::new(
            Plugin::new(Arc::clone(&self.shared), id.clone(), &component, cache_hit).await?,
        );
        Ok(Arc::clone(self.lock().entry(id).or_insert(plugin)))
    }

    /// The loaded plugin with this id (blake3 hex of its bytes).
    pub fn get(&self, id: &str) -> Option<Arc<Plugin>> {
        self.lock().get(id).cloned()
    }

    /// Forgets a loaded plugin (calls in progress finish); returns whether it was loaded.
    pub fn unload(&self, id: &str) -> bool {
        self.lock().remove(id).is_some()
    }

    /// Which instance allocator is in use, for metrics.
    pub fn pool_info(&self) -> &PoolInfo {
        &self.shared.pool
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Plugin>>> {
        self.plugins
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
