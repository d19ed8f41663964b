//! The sandboxed tool runtime: loads WebAssembly components of world `pipecat:plugin/plugin` and runs
//! their tools with nothing granted but what a workflow allows.
//!
//! # Layout, in the order a call flows
//! - [`config`](crate::SandboxConfig): [`SandboxConfig`], per-call [`Limits`] and the workflow's [`Grant`].
//! - `engine`: the wasmtime engine (Cranelift, fuel, epoch interruption with a ticker thread, pooling
//!   allocator probed at start with on-demand fallback).
//! - `sandbox`: [`Sandbox`] holds the engine, the linker (WASI p2 granting nothing + the plugin interfaces)
//!   and the shared HTTP client; [`Sandbox::load`] checks bytes and calls `load`.
//! - `load`: header checks, compilation off the async runtime under a deadline, the on-disk cache keyed by
//!   blake3 of the bytes and the engine's compatibility hash.
//! - `plugin`: [`Plugin`] keeps an `InstancePre`; [`Plugin::call`] checks the tool and arguments.
//! - `executor`: where calls run — inline while short, then on a guest runtime with lower-priority threads,
//!   so one tenant's spinning tools do not delay the server's other work; a plugin that used more than
//!   2 ms of CPU in a call starts its calls of the next 10 s there directly.
//! - `run`: a fresh store per call with fuel, memory limiter, epoch deadline (yielding to tokio every 1 ms
//!   tick; the ticker thread sleeps while no call runs) and a tokio timeout; traps become [`CallError`]s.
//! - `host`: the per-call state and the `log` / `config` / `http` imports; `host::logs` captures stdout and
//!   stderr into the bounded call log.
//! - `http`: `http.send` — host grants, DNS resolution that refuses internal addresses, manual redirects.
//!
//! See `docs/adr/001-plugin-http-interface.md` for why HTTP is a host interface rather than `wasi:http`.

mod bindings;
mod config;
mod engine;
mod error;
mod executor;
mod host;
mod http;
mod load;
mod plugin;
mod run;
mod sandbox;

pub use config::{Grant, Limits, SandboxConfig};
pub use engine::PoolInfo;
pub use error::{CallError, LoadError, SandboxError};
pub use host::logs::{LogLevel, LogLine, LogSource};
pub use http::address::is_internal_address;
pub use http::grant::validate_host_pattern;
pub use plugin::{CallOutcome, Plugin, ToolInfo};
pub use sandbox::Sandbox;
