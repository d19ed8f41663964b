//! Pipecat Host's API server: CONTRACT.md §1–5 and §7 over axum.
//!
//! # Layout
//! - [`config`]: [`ServeConfig`] (flags / environment) and [`FileConfig`] (the TOML file: providers, plans,
//!   limits).
//! - [`server`]: [`serve`] (the `pipecat serve` command), [`start`] (bind and run in the background, for
//!   tests and embedding) and [`app`] (the [`axum::Router`] with its middleware).
//! - [`state`]: [`AppState`], shared by every handler: the store, the [`runtime::Runtime`] (sandbox, engine,
//!   providers), plans, limits, the rate limiter and the run semaphore.
//! - [`auth`] and [`keys`]: `X-API-Key` extractors and the key format (`pc_live_…` with a checksum).
//! - [`error`]: [`ApiError`], the one error type of handlers, and the [`error::ApiJson`] extractor.
//! - [`routes`]: one module per route group (accounts and keys, plugins, workflows, invoke, runs, health).
//! - [`runtime`] and [`tools`]: publish-time validation, the parsed-workflow cache, and the engine's tool
//!   runner over the sandbox.
//! - [`limits`]: the per-key token bucket and the calendar month of run limits.
//! - [`openapi`]: `/openapi.json`, generated from the handlers' annotations.
//! - [`stats`], [`metrics`] and [`dashboard`]: run statistics kept incrementally by a background task
//!   (`/v1/workflows/{id}/stats`), retention, Prometheus metrics (`/metrics`) and the embedded web
//!   dashboard (`/dashboard`); see `docs/monitoring.md`.
//! - [`runner`], [`live`], [`idempotency`] and [`webhook`]: one run for every transport (REST, SSE,
//!   WebSocket, async), the live-run registry (cancel tokens, event logs to resume from) and the event
//!   schema, `Idempotency-Key`, signed completion webhooks; see `docs/streaming.md`.
//! - [`examples`]: `--with-examples` seeding; [`shutdown`]: signal handling.
//!
//! # How a request flows
//! The request gets an `x-request-id` (kept when the client sent one) and a tracing span carrying it; a
//! panic anywhere below becomes a `500` JSON body. The router picks the handler; its extractors
//! authenticate the key ([`auth::AccountAuth`] looks the key's blake3 hash up in the store, after a
//! checksum test that rejects malformed keys without a lookup, then applies the per-key rate limit).
//! An invocation then checks content type, size and JSON, finds the published version (`404` for anything
//! not visible to the account), takes a run permit without waiting (`503` when none is free), reserves one
//! run of the month in the store (exact under concurrency; `429` past the limit), and runs the engine in a
//! task of its own ([`runner::start`]) with a [`tools::SandboxTools`] runner pinned to the version's plugins.
//! The run record is durable in the store before the answer (or the `run_finished` event) leaves.

pub mod auth;
pub mod config;
pub mod dashboard;
pub mod error;
pub mod examples;
pub mod idempotency;
pub mod keys;
pub mod limits;
pub mod live;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod runner;
pub mod runtime;
pub mod server;
pub mod shutdown;
pub mod state;
pub mod stats;
pub mod tools;
pub mod webhook;

pub use config::{FileConfig, LimitsConfig, LogFormat, ServeConfig};
pub use error::ApiError;
pub use server::{RunningServer, app, serve, start, start_with};
pub use state::AppState;
