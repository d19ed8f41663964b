//! Per-call host state: WASI with nothing granted, the memory limiter, the call's log and its grant, and the
//! host side of the `log`, `config` and `http` interfaces.

pub(crate) mod logs;

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::pipecat::plugin::{config, http, log, types};
use crate::http::HttpAccess;
use logs::{LogLevel, LogSource, SharedLog};

/// The guest tried to grow a memory past its limit; raised as a trap from `memory.grow`.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes exceeded (wanted {wanted})")]
pub(crate) struct MemoryLimitExceeded {
    limit: usize,
    wanted: usize,
}

/// Caps each linear memory and table of the store.
pub(crate) struct Limiter {
    memory_bytes: usize,
    /// Set when a growth was refused, so a trap that follows (e.g. a Rust abort) reads as `memory_limit`.
    pub(crate) hit: bool,
}

/// Table elements one table may hold.
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.hit = true;
            return Err(wasmtime::Error::new(MemoryLimitExceeded {
                limit: self.memory_bytes,
                wanted: desired,
            }));
        }
        Ok(maximum.is_none_or(|max| desired <= max))
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.hit = true;
        Ok(())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS && maximum.is_none_or(|max| desired <= max))
    }
}

/// Everything a guest reaches during one call.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: Limiter,
    pub(crate) log: SharedLog,
    config: Arc<BTreeMap<String, String>>,
    http: HttpAccess,
}

impl HostState {
    /// State with WASI granting nothing: no files, env, args, stdin or network; stdout/stderr go to the log.
    pub(crate) fn new(
        memory_bytes: usize,
        max_log_bytes: usize,
        config: Arc<BTreeMap<String, String>>,
        http: HttpAccess,
    ) -> Self {
        let log = SharedLog::new(max_log_bytes);
        let wasi = WasiCtx::builder()
            .stdout(log.stream(LogSource::Stdout))
            .stderr(log.stream(LogSource::Stderr))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter {
                memory_bytes,
                hit: false,
            },
            log,
            config,
            http,
        }
    }

    /// A store for this state with its limiter installed.
    pub(crate) fn into_store(self, engine: &wasmtime::Engine) -> Store<Self> {
        let mut store = Store::new(engine, self);
        store.limiter(|state| &mut state.limiter);
        store
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for HostState {}

impl log::Host for HostState {
    async fn write(&mut self, level: log::Level, message: String) {
        let level = match level {
            log::Level::Trace => LogLevel::Trace,
            log::Level::Debug => LogLevel::Debug,
            log::Level::Info => LogLevel::Info,
            log::Level::Warn => LogLevel::Warn,
            log::Level::Error => LogLevel::Error,
        };
        self.log.lock().push(level, LogSource::Plugin, &message);
    }
}

impl config::Host for HostState {
    async fn get(&mut self, key: String) -> Option<String> {
        self.config.get(&key).cloned()
    }

    async fn get_all(&mut self) -> Vec<(String, String)> {
        self.config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

impl http::Host for HostState {
    async fn send(&mut self, request: http::Request) -> Result<http::Response, http::Error> {
        self.http.send(request).await
    }
}
