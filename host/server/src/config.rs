//! Configuration: command-line flags ([`ServeConfig`]) and the optional TOML file ([`FileConfig`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;

/// How `pipecat serve` is started. Every flag is also an environment variable.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeConfig {
    /// Address to listen on (`127.0.0.1:0` picks a free port; the bound address is printed).
    #[arg(long, env = "PIPECAT_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Directory of the embedded store (created when missing; locked while the server runs).
    #[arg(long, env = "PIPECAT_DATA_DIR", default_value = "./pipecat-data")]
    pub data_dir: PathBuf,

    /// Optional TOML file: `[[providers]]`, `[plans.<name>]`, `[limits]`.
    #[arg(long, env = "PIPECAT_CONFIG")]
    pub config: Option<PathBuf>,

    /// Seed a demo account and key, upload the shipped plugins and publish the example workflows.
    #[arg(long, env = "PIPECAT_WITH_EXAMPLES", default_value_t = false)]
    pub with_examples: bool,

    /// Log format: `text` for people, `json` for log collectors.
    #[arg(long, env = "PIPECAT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// The operator's admin key. When unset, one is generated on first start, printed once, and only its
    /// hash is kept in the data directory.
    #[arg(long, env = "PIPECAT_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
}

impl ServeConfig {
    /// A configuration for tests and embedding: listen on `127.0.0.1:0`, no config file.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            config: None,
            with_examples: false,
            log_format: LogFormat::Text,
            admin_key: None,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The optional TOML configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// LLM providers beyond the conventional environment variables (`[[providers]]`).
    #[serde(default)]
    pub providers: Vec<pipecat_llm::ProviderConfig>,
    /// Plans by name (`[plans.pro] monthly_run_limit = 100000`); merged over the built-in defaults.
    #[serde(default)]
    pub plans: BTreeMap<String, PlanConfig>,
    /// Request, concurrency, rate and sandbox limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// SSE and WebSocket streams: pings, WebSocket limits, kept events (`[streaming]`).
    #[serde(default)]
    pub streaming: crate::live::StreamingConfig,
    /// Completion webhooks: signing secret, retries, outbound rules (`[webhooks]`).
    #[serde(default)]
    pub webhooks: crate::webhook::WebhookConfig,
    /// Pruning of old run records (`[retention]`).
    #[serde(default)]
    pub retention: RetentionConfig,
    /// Statistics and metrics (`[monitoring]`).
    #[serde(default)]
    pub monitoring: MonitoringConfig,
}

impl FileConfig {
    /// Reads and parses the file at `path`.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("parsing config file {}", path.display()))
    }

    /// Parses TOML text.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        Ok(toml::from_str(text)?)
    }

    /// The providers part, as the LLM crate takes it.
    pub fn providers_config(&self) -> pipecat_llm::ProvidersConfig {
        pipecat_llm::ProvidersConfig {
            providers: self.providers.clone(),
        }
    }

    /// The plans: built-in defaults overridden by the file.
    pub fn plans(&self) -> BTreeMap<String, Option<u64>> {
        let mut plans = default_plans();
        for (name, plan) in &self.plans {
            plans.insert(name.clone(), plan.monthly_run_limit);
        }
        plans
    }
}

/// The built-in plans: `free` (1,000 runs a month), `pro` (100,000) and `enterprise` (unlimited).
pub fn default_plans() -> BTreeMap<String, Option<u64>> {
    BTreeMap::from([
        ("free".to_string(), Some(1_000)),
        ("pro".to_string(), Some(100_000)),
        ("enterprise".to_string(), None),
    ])
}

/// One plan.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanConfig {
    /// Runs per calendar month (UTC); absent means unlimited.
    pub monthly_run_limit: Option<u64>,
}

/// Limits of the server (`[limits]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest JSON request body (invoke and other JSON routes), in bytes.
    pub max_body_bytes: usize,
    /// Largest plugin upload, in bytes.
    pub max_plugin_bytes: usize,
    /// Runs executing at once; further invocations get `503 overloaded`.
    pub max_concurrent_runs: usize,
    /// Runs one account may have executing at once, so one tenant cannot hold every slot; further
    /// invocations of that account get `503 overloaded` (`"scope": "account"`). `0`: only the server-wide
    /// limit applies (the default).
    pub max_concurrent_runs_per_account: usize,
    /// Sustained requests per second per API key (token bucket); `0` disables the limit.
    pub rate_per_key_per_second: f64,
    /// Burst size of the per-key token bucket.
    pub rate_burst: u32,
    /// Seconds to wait for runs in flight after SIGTERM before giving up on them.
    pub shutdown_grace_secs: u64,
    /// Seconds one disk write of the store (a flush, a run-log write) may take before the store counts as
    /// stalled: writes then answer `503 storage_unavailable` at once and `/readyz` fails, instead of
    /// waiting on a wedged disk (minimum 1).
    pub store_stall_secs: u64,
    /// Let plugins reach private and loopback addresses (tests, local development).
    pub allow_private_networks: bool,
    /// Per-call fuel budget of a tool call.
    pub tool_fuel: Option<u64>,
    /// Per-call memory cap of a tool call, in bytes.
    pub tool_memory_bytes: Option<u64>,
    /// Per-call wall-clock deadline of a tool call, in milliseconds.
    pub tool_timeout_ms: Option<u64>,
    /// Largest tool result, in bytes.
    pub tool_output_bytes: Option<u64>,
    /// Deadline for compiling an uploaded plugin, in seconds.
    pub compile_timeout_secs: Option<u64>,
    /// Seconds a client has to send a request's complete head (request line and headers), also while a
    /// kept-alive connection waits for its next request; slower clients are disconnected. `0` disables it.
    pub header_read_timeout_secs: u64,
    /// WebSocket: seconds one message to the client may take to go out; a client that does not read
    /// for that long is disconnected (its runs are then handled as for any dropped connection).
    pub ws_send_timeout_secs: u64,
    /// WebSocket: messages a second one connection may send (token bucket); past it the connection is
    /// closed with code 1008. `0` disables the limit.
    pub ws_messages_per_second: f64,
    /// WebSocket: burst size of the per-connection message bucket.
    pub ws_message_burst: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            max_plugin_bytes: 32 * 1024 * 1024,
            max_concurrent_runs: 256,
            max_concurrent_runs_per_account: 0,
            rate_per_key_per_second: 0.0,
            rate_burst: 100,
            shutdown_grace_secs: 30,
            store_stall_secs: 30,
            allow_private_networks: false,
            tool_fuel: None,
            tool_memory_bytes: None,
            tool_timeout_ms: None,
            tool_output_bytes: None,
            compile_timeout_secs: None,
            header_read_timeout_secs: 30,
            ws_send_timeout_secs: 30,
            ws_messages_per_second: 100.0,
            ws_message_burst: 200,
        }
    }
}

/// Retention of run records (`[retention]`): pruned in the background; statistics stay.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Delete run records older than this many days.
    pub max_age_days: Option<u64>,
    /// Keep at most this many run records per workflow (the newest).
    pub max_runs_per_workflow: Option<usize>,
    /// Seconds between two pruning passes.
    pub interval_secs: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            max_age_days: None,
            max_runs_per_workflow: None,
            interval_secs: 600,
        }
    }
}

/// Statistics and metrics (`[monitoring]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitoringConfig {
    /// Require the admin key on `GET /metrics` (open by default, as scrapers expect).
    pub metrics_require_key: bool,
    /// Milliseconds between two writes of changed statistics to the store.
    pub stats_flush_ms: u64,
}

impl Default for MonitoringConfig {
    fn default() -> Self {
        Self {
            metrics_require_key: false,
            stats_flush_ms: 1000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plans_and_limits_over_defaults() {
        let cfg = FileConfig::parse(
            "[plans.free]\nmonthly_run_limit = 20\n[plans.team]\nmonthly_run_limit = 500\n\
             [limits]\nmax_body_bytes = 100\nallow_private_networks = true\n",
        )
        .expect("valid config");
        let plans = cfg.plans();
        assert_eq!(plans["free"], Some(20));
        assert_eq!(plans["team"], Some(500));
        assert_eq!(plans["enterprise"], None);
        assert_eq!(cfg.limits.max_body_bytes, 100);
        assert!(cfg.limits.allow_private_networks);
        assert_eq!(cfg.limits.max_concurrent_runs, 256);
    }

    #[test]
    fn rejects_unknown_fields() {
        assert!(FileConfig::parse("[limits]\nmax_bodyy = 1\n").is_err());
    }
}
