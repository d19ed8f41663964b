//! A loaded plugin: its tools and a pre-linked instance template; each call runs in a fresh store.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::bindings::PluginPre;
use crate::bindings::exports::pipecat::plugin::tools::{ToolError, ToolInfo as RawToolInfo};
use crate::executor::Pace;
use crate::host::HostState;
use crate::host::logs::LogLine;
use crate::http::grant::HostPattern;
use crate::run::{Access, Action, Output, run};
use crate::sandbox::Shared;
use crate::{CallError, Grant, LoadError};

/// One tool a plugin offers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolInfo {
    /// Name, unique within the plugin (`[a-z0-9_-]{1,64}`).
    pub name: String,
    /// What the tool does, shown to language models.
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: serde_json::Value,
}

/// What a call produced, with its log and costs.
#[derive(Debug, Clone)]
pub struct CallOutcome {
    /// The tool's result text (returned as is, even when it is not JSON), or why there is none.
    pub result: Result<String, CallError>,
    /// Lines from `log.write`, stdout and stderr, bounded by `Limits::max_log_bytes`.
    pub logs: Vec<LogLine>,
    /// Fuel used by the call.
    pub fuel_consumed: u64,
    /// Wall-clock time of the call, instantiation included.
    pub duration: Duration,
}

/// A compiled, linked plugin. Cheap to share; calls may run concurrently.
pub struct Plugin {
    id: String,
    tools: Vec<ToolInfo>,
    pre: PluginPre<HostState>,
    shared: Arc<Shared>,
    cache_hit: bool,
    /// Whether its calls were slow lately (see [`crate::executor`]).
    pace: Pace,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("id", &self.id)
            .field("tools", &self.tools)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// Links and validates a compiled component, then lists its tools inside the sandbox.
    pub(crate) async fn new(
        shared: Arc<Shared>,
        id: String,
        component: &wasmtime::component::Component,
        cache_hit: bool,
    ) -> Result<Self, LoadError> {
        let instance_pre = shared
            .linker
            .instantiate_pre(component)
            .map_err(|e| LoadError::UnknownImport(format!("{e:#}")))?;
        let pre =
            PluginPre::new(instance_pre).map_err(|e| LoadError::WrongWorld(format!("{e:#}")))?;
        let pace = Pace::default();
        // Listing runs guest code too: like a call, it leaves the caller's threads if it takes long.
        let listing = {
            let (shared, pre) = (Arc::clone(&shared), pre.clone());
            async move {
                let limits = shared.config.default_limits.clone();
                let access = Access {
                    config: Arc::new(BTreeMap::new()),
                    allowed_hosts: Arc::new(Vec::new()),
                };
                run(&shared, &pre, &limits, access, Action::ListTools)
                    .await
                    .result
            }
        };
        let raw = match shared.executor.run(&pace, listing).await {
            Some(Ok(Output::Tools(tools))) => tools,
            Some(Ok(Output::Result(_))) => {
                return Err(LoadError::Internal(
                    "list-tools returned a call result".into(),
                ));
            }
            Some(Err(error)) => return Err(LoadError::ListTools(error)),
            None => {
                return Err(LoadError::Internal(
                    "listing the tools ended without a result".into(),
                ));
            }
        };
        let tools = validate_tools(raw)?;
        Ok(Self {
            id,
            tools,
            pre,
            shared,
            cache_hit,
            pace,
        })
    }

    /// The plugin's id: blake3 of its bytes, in hex.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The tools the plugin listed at load.
    pub fn tools(&self) -> &[ToolInfo] {
        &self.tools
    }

    /// Whether the compiled code came from the on-disk cache.
    pub fn cache_hit(&self) -> bool {
        self.cache_hit
    }

    /// Calls `tool` with a JSON object of arguments under `grant`. Dropping the future stops the guest.
    pub async fn call(&self, tool: &str, arguments_json: &str, grant: &Grant) -> CallOutcome {
        let started = Instant::now();
        let refuse = |error: CallError| CallOutcome {
            result: Err(error),
            logs: Vec::new(),
            fuel_consumed: 0,
            duration: started.elapsed(),
        };
        if !self.tools.iter().any(|t| t.name == tool) {
            return refuse(CallError::UnknownTool(tool.to_owned()));
        }
        match serde_json::from_str::<serde_json::Value>(arguments_json) {
            Ok(serde_json::Value::Object(_)) => {}
            Ok(_) => {
                return refuse(CallError::InvalidArguments(
                    "the arguments must be a JSON object".into(),
                ));
            }
            Err(error) => {
                return refuse(CallError::InvalidArguments(format!(
                    "the arguments are not JSON: {error}"
                )));
            }
        }
        let limits = grant
            .limits
            .clone()
            .unwrap_or_else(|| self.shared.config.default_limits.clone());
        let allowed_hosts = grant
            .allowed_hosts
            .iter()
            .filter_map(|pattern| {
                HostPattern::parse(pattern)
                    .inspect_err(|error| tracing::warn!(%error, plugin = self.id, "ignoring an invalid host grant"))
                    .ok()
            })
            .collect();
        let access = Access {
            config: Arc::new(grant.config.clone()),
            allowed_hosts: Arc::new(allowed_hosts),
        };
        // Inline while short, then on the guest runtime (lower priority), so a tenant's spinning tools do
        // not queue ahead of others' requests on the server's threads. The result is checked (and a huge
        // one dropped) inside the task, i.e. off the server's threads once the call has moved.
        let (shared, pre) = (Arc::clone(&self.shared), self.pre.clone());
        let (tool, arguments) = (tool.to_owned(), arguments_json.to_owned());
        let guest = async move {
            let action = Action::Call {
                tool: &tool,
                arguments: &arguments,
            };
            let run = run(&shared, &pre, &limits, access, action).await;
            CallOutcome {
                result: check_result(run.result, limits.max_output_bytes),
                logs: run.logs,
                fuel_consumed: run.fuel_consumed,
                duration: run.duration,
            }
        };
        self.shared
            .executor
            .run(&self.pace, guest)
            .await
            .unwrap_or_else(|| {
                refuse(CallError::Internal(
                    "the tool call's task ended without a result".into(),
                ))
            })
    }
}

/// The tool's text, or why there is none: too large, or the guest's own error (cut to `max`).
fn check_result(result: Result<Output, CallError>, max: usize) -> Result<String, CallError> {
    match result {
        Ok(Output::Result(Ok(text))) if text.len() > max => Err(CallError::OutputTooLarge {
            size: text.len(),
            max,
        }),
        Ok(Output::Result(Ok(text))) => Ok(text),
        Ok(Output::Result(Err(ToolError::InvalidArguments(m)))) => {
            Err(CallError::InvalidArguments(truncate(m, max)))
        }
        Ok(Output::Result(Err(ToolError::Failed(m)))) => Err(CallError::Failed(truncate(m, max))),
        Ok(Output::Tools(_)) => Err(CallError::Internal("call-tool returned a tool list".into())),
        Err(error) => Err(error),
    }
}

fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

/// Checks names (`[a-z0-9_-]{1,64}`, unique) and that each schema is a JSON object.
fn validate_tools(raw: Vec<RawToolInfo>) -> Result<Vec<ToolInfo>, LoadError> {
    let mut seen = HashSet::new();
    raw.into_iter()
        .map(|tool| {
            let name_ok = (1..=64).contains(&tool.name.len())
                && tool.name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            if !name_ok {
                return Err(LoadError::InvalidTools(format!(
                    "bad tool name {:?}",
                    tool.name
                )));
            }
            if !seen.insert(tool.name.clone()) {
                return Err(LoadError::InvalidTools(format!(
                    "tool {:?} is listed twice",
                    tool.name
                )));
            }
            let parameters: serde_json::Value =
                serde_json::from_str(&tool.parameters).map_err(|e| {
                    LoadError::InvalidTools(format!(
                        "parameters of {:?} are not JSON: {e}",
                        tool.name
                    ))
                })?;
            if !parameters.is_object() {
                return Err(LoadError::InvalidTools(format!(
                    "parameters of {:?} are not a JSON object",
                    tool.name
                )));
            }
            Ok(ToolInfo {
                name: tool.name,
                description: tool.description,
                parameters,
            })
        })
        .collect()
}
