//! The Pipecat workflow engine: parses, validates and runs workflow documents. It knows nothing of HTTP
//! servers or of Wasm: LLMs are reached through [`pipecat_llm::Provider`]s and tools through a [`ToolRunner`]
//! that the server implements on top of the sandbox.
//!
//! # Layout, in the order a workflow flows through it
//! - [`document`]: the serde types of the workflow document (CONTRACT.md §6 plus the documented extensions).
//! - [`validate`]: [`parse`] (every environment-independent problem, templates and schemas compiled once into a
//!   [`Workflow`]) and [`validate()`] (tool references and providers, through a [`ValidationEnv`]).
//! - `graph`: adjacency and Kahn's algorithm.
//! - [`template`]: minijinja without a loader, with fuel and an output cap.
//! - `run`: the DAG scheduler ([`Engine::run`]); `nodes`: one module per node type.
//! - [`events`]: the event stream of a run; [`outcome`]: the run record and the REST body.
//!
//! # Cancellation
//! A run is one future. Dropping it (e.g. the client disconnects and the server drops the task) drops every
//! node, provider request and tool call in flight: nothing is spawned. To end a run and still get its record,
//! fire the [`RunContext::cancel`] token instead: the run stops and returns status `cancelled`.

pub mod document;
pub mod events;
mod graph;
pub mod limits;
mod nodes;
pub mod outcome;
mod rules;
mod run;
pub mod template;
pub mod validate;
mod workflow;

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use pipecat_llm::Provider;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use events::{Event, EventKind};
pub use limits::{RunLimits, ValidationLimits};
pub use outcome::{
    ErrorInfo, NodeRecord, NodeStatus, ResponseBody, RunBody, RunError, RunOutcome, RunStatus,
    ToolCallRecord,
};
pub use validate::{Problem, ValidationEnv, check, parse, parse_with, validate};
pub use workflow::Workflow;

/// A tool as the engine sees it (what the sandbox reports for a plugin's tool).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// The plugin name (`weather`).
    pub plugin: String,
    /// The tool's own name (`get_weather`).
    pub name: String,
    /// What the tool does (shown to models).
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: serde_json::Value,
}

/// Why a tool call failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ToolFailure {
    /// The sandbox outcome: `invalid_arguments`, `failed`, `out_of_fuel`, `timeout`, `memory`, …
    pub code: String,
    /// Human-readable explanation (shown to the model as the tool result).
    pub message: String,
}

/// Runs tools for one run. The server implements it over the sandbox, with the workflow's plugin grants.
pub trait ToolRunner: Send + Sync {
    /// Calls the tool `reference` (`plugin.tool`) with a JSON arguments object; returns the result text.
    fn call<'a>(
        &'a self,
        reference: &'a str,
        arguments: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<String, ToolFailure>>;
    /// The tool behind `reference`, if there is one.
    fn spec(&self, reference: &str) -> Option<ToolSpec>;
}

/// Finds LLM providers by name. Implemented for [`pipecat_llm::Providers`], maps and closures ([`ProviderFn`]).
pub trait ProviderSource: Send + Sync {
    /// The provider named `name`.
    fn provider(&self, name: &str) -> Option<Arc<dyn Provider>>;
}

/// A [`ProviderSource`] made of a closure.
pub struct ProviderFn<F>(pub F);

impl<F> ProviderSource for ProviderFn<F>
where
    F: Fn(&str) -> Option<Arc<dyn Provider>> + Send + Sync,
{
    fn provider(&self, name: &str) -> Option<Arc<dyn Provider>> {
        (self.0)(name)
    }
}

impl ProviderSource for pipecat_llm::Providers {
    fn provider(&self, name: &str) -> Option<Arc<dyn Provider>> {
        self.get(name)
    }
}

impl ProviderSource for HashMap<String, Arc<dyn Provider>> {
    fn provider(&self, name: &str) -> Option<Arc<dyn Provider>> {
        self.get(name).cloned()
    }
}

/// Per-run context: the id, an optional event listener and an optional cancellation token.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// The run id (the server makes a UUID v7).
    pub run_id: Uuid,
    /// Listener for events; bounded, so a slow listener slows the run. Without one, LLM calls do not stream.
    pub events: Option<mpsc::Sender<Event>>,
    /// Fire to stop the run with status `cancelled`.
    pub cancel: Option<CancellationToken>,
}

impl RunContext {
    /// A context with a new UUID v7, no listener and no token.
    pub fn new() -> RunContext {
        RunContext {
            run_id: Uuid::now_v7(),
            events: None,
            cancel: None,
        }
    }

    /// The same context with an event listener.
    pub fn with_events(mut self, events: mpsc::Sender<Event>) -> RunContext {
        self.events = Some(events);
        self
    }

    /// The same context with a cancellation token.
    pub fn with_cancel(mut self, cancel: CancellationToken) -> RunContext {
        self.cancel = Some(cancel);
        self
    }
}

impl Default for RunContext {
    fn default() -> Self {
        Self::new()
    }
}

/// Runs workflows. Cheap to share (`Arc<Engine>`); holds the providers and the operator's run limits.
pub struct Engine {
    providers: Arc<dyn ProviderSource>,
    limits: RunLimits,
}

impl Engine {
    /// An engine over these providers with these limits (a workflow's own `limits` can only lower them).
    pub fn new(providers: Arc<dyn ProviderSource>, limits: RunLimits) -> Self {
        Engine { providers, limits }
    }

    /// The operator's limits.
    pub fn limits(&self) -> &RunLimits {
        &self.limits
    }

    /// Runs `workflow` on `input` to the end. Never panics on bad input, provider or tool behaviour: every
    /// failure becomes a run with status `error`. See the crate docs on cancellation.
    pub async fn run(
        &self,
        workflow: Arc<Workflow>,
        input: serde_json::Value,
        tools: Arc<dyn ToolRunner>,
        ctx: RunContext,
    ) -> RunOutcome {
        run::run(self, &workflow, input, tools.as_ref(), ctx).await
    }
}
