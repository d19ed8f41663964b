//! [`SandboxTools`]: the engine's [`ToolRunner`] over the sandbox, for one run of one published version.

use std::collections::HashMap;
use std::sync::Arc;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use pipecat_engine::{ToolFailure, ToolRunner, ToolSpec};
use pipecat_sandbox::{Grant, Plugin};

/// The pinned plugins of a version (or why one could not be loaded) with the workflow's grants.
pub struct SandboxTools {
    plugins: HashMap<String, (Result<Arc<Plugin>, String>, Grant)>,
}

impl SandboxTools {
    /// Plugin name → (loaded plugin or load error, grant).
    pub fn new(plugins: HashMap<String, (Result<Arc<Plugin>, String>, Grant)>) -> Self {
        Self { plugins }
    }
}

impl ToolRunner for SandboxTools {
    fn call<'a>(
        &'a self,
        reference: &'a str,
        arguments: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<String, ToolFailure>> {
        async move {
            let fail = |code: &str, message: String| ToolFailure {
                code: code.to_string(),
                message,
            };
            let (plugin_name, tool) = reference.split_once('.').ok_or_else(|| {
                fail(
                    "unknown_tool",
                    format!("{reference:?} is not a plugin.tool reference"),
                )
            })?;
            let (plugin, grant) = self.plugins.get(plugin_name).ok_or_else(|| {
                fail(
                    "unknown_tool",
                    format!("plugin {plugin_name:?} is not pinned by this version"),
                )
            })?;
            let plugin = plugin
                .as_ref()
                .map_err(|e| fail("plugin_unavailable", e.clone()))?;
            let args = arguments.to_string();
            let outcome = plugin.call(tool, &args, grant).await;
            for line in &outcome.logs {
                tracing::debug!(plugin = %plugin_name, tool, log = ?line, "plugin log");
            }
            outcome.result.map_err(|e| fail(e.code(), e.to_string()))
        }
        .boxed()
    }

    fn spec(&self, reference: &str) -> Option<ToolSpec> {
        let (plugin_name, tool) = reference.split_once('.')?;
        let (Ok(plugin), _) = self.plugins.get(plugin_name)? else {
            return None;
        };
        let info = plugin.tools().iter().find(|t| t.name == tool)?;
        Some(ToolSpec {
            plugin: plugin_name.to_string(),
            name: info.name.clone(),
            description: info.description.clone(),
            parameters: info.parameters.clone(),
        })
    }
}
