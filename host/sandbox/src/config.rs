//! Configuration of the sandbox and of each call: limits with safe defaults, and what a workflow grants.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Resource limits of one tool call (and of listing a plugin's tools at load).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Fuel budget (about one unit per WebAssembly instruction). The default, 1e9, is roughly one second of
    /// pure computation: far above what a tool that formats a request or parses a response needs, and low
    /// enough that a runaway loop is stopped deterministically well before the wall-clock timeout.
    pub fuel: u64,
    /// Maximum size of a linear memory; growing past it traps (`memory_limit`).
    pub memory_bytes: usize,
    /// Wall-clock deadline of the whole call, including time spent in host calls such as HTTP.
    pub timeout: Duration,
    /// Maximum size of the tool's result text (`output_too_large` past it).
    pub max_output_bytes: usize,
    /// Maximum bytes of log text kept (log.write, stdout and stderr together); the rest is dropped.
    pub max_log_bytes: usize,
    /// Deadline of one outbound HTTP request (redirects included); a guest may ask for less, not more.
    pub http_timeout: Duration,
    /// Maximum size of one HTTP response body.
    pub max_http_response_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel: 1_000_000_000,
            memory_bytes: 64 << 20,
            timeout: Duration::from_secs(5),
            max_output_bytes: 1 << 20,
            max_log_bytes: 64 << 10,
            http_timeout: Duration::from_secs(4),
            max_http_response_bytes: 4 << 20,
        }
    }
}

/// What a workflow grants to one plugin for a call. The default grants nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    /// Values the guest reads with `config.get` / `config.get-all`.
    pub config: BTreeMap<String, String>,
    /// Hosts the guest may reach with `http.send`: `scheme://host[:port]`, where `host` may be `*.example.com`
    /// (any subdomain, not the apex) and a missing port means the scheme's default. See
    /// [`validate_host_pattern`](crate::validate_host_pattern).
    pub allowed_hosts: Vec<String>,
    /// Limits of this call; `None` uses [`SandboxConfig::default_limits`].
    pub limits: Option<Limits>,
}

/// Configuration of a [`Sandbox`](crate::Sandbox).
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Folder for compiled components (`<blake3>-<engine hash>.cwasm`); `None` compiles on every start.
    /// Files there are loaded as trusted native code: the folder must be writable by the host only.
    pub cache_dir: Option<PathBuf>,
    /// Limits of calls whose grant has none, and of listing tools at load.
    pub default_limits: Limits,
    /// Allows HTTP to loopback, private, link-local and other internal addresses. Off in production; tests
    /// turn it on to reach a server on `127.0.0.1`.
    pub allow_private_networks: bool,
    /// Largest component accepted by [`Sandbox::load`](crate::Sandbox::load).
    pub max_component_bytes: usize,
    /// Deadline of compiling one component.
    pub compile_timeout: Duration,
    /// Compilations allowed to run at once (each uses the blocking thread pool).
    pub max_concurrent_compiles: usize,
    /// Instances that may run at once with the pooling allocator (its slots are reserved at start).
    pub max_concurrent_instances: u32,
    /// Largest linear memory any call may grant itself (the pooling allocator's slot size).
    pub max_memory_bytes: usize,
    /// Try the pooling allocator (falls back to on-demand allocation when it cannot reserve its memory).
    pub pooling: bool,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            cache_dir: None,
            default_limits: Limits::default(),
            allow_private_networks: false,
            max_component_bytes: 32 << 20,
            compile_timeout: Duration::from_secs(60),
            max_concurrent_compiles: 2,
            max_concurrent_instances: 256,
            max_memory_bytes: 1 << 30,
            pooling: true,
        }
    }
}
