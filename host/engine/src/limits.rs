//! Run and validation limits.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::document::LimitsDoc;

/// Limits of one run. The defaults are safe for a shared server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunLimits {
    /// Node executions per run (`max_steps_exceeded`).
    pub max_steps: u32,
    /// Wall-clock time of the whole run (`run_timeout`).
    pub run_timeout: Duration,
    /// Tool rounds per LLM node (`max_tool_rounds_exceeded`).
    pub max_tool_rounds: u32,
    /// Input plus output tokens per run (`token_limit_exceeded`).
    pub max_tokens_per_run: u64,
    /// Tool calls in flight at once in one run.
    pub max_concurrent_tool_calls: u32,
    /// Bytes of one rendered template (`template_error`).
    pub max_template_output: usize,
    /// Template instructions per render (minijinja fuel).
    pub template_fuel: u64,
}

impl Default for RunLimits {
    fn default() -> Self {
        RunLimits {
            max_steps: 100,
            run_timeout: Duration::from_secs(300),
            max_tool_rounds: 8,
            max_tokens_per_run: 100_000,
            max_concurrent_tool_calls: 8,
            max_template_output: 1 << 20,
            template_fuel: 1_000_000,
        }
    }
}

impl RunLimits {
    /// These limits lowered by the document's own limits (a document never raises a limit).
    pub fn restricted_by(&self, doc: Option<&LimitsDoc>) -> RunLimits {
        let mut limits = self.clone();
        let Some(doc) = doc else { return limits };
        if let Some(v) = doc.max_steps {
            limits.max_steps = limits.max_steps.min(v);
        }
        if let Some(v) = doc.run_timeout_ms {
            limits.run_timeout = limits.run_timeout.min(Duration::from_millis(v));
        }
        if let Some(v) = doc.max_tool_rounds {
            limits.max_tool_rounds = limits.max_tool_rounds.min(v);
        }
        if let Some(v) = doc.max_tokens_per_run {
            limits.max_tokens_per_run = limits.max_tokens_per_run.min(v);
        }
        if let Some(v) = doc.max_concurrent_tool_calls {
            limits.max_concurrent_tool_calls = limits.max_concurrent_tool_calls.min(v).max(1);
        }
        limits
    }
}

/// Size bounds checked while parsing, so validation stays fast on hostile documents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationLimits {
    /// Nodes per workflow.
    pub max_nodes: usize,
    /// Edges per workflow.
    pub max_edges: usize,
    /// Bytes of one template source.
    pub max_template_len: usize,
    /// Tools per LLM node.
    pub max_tools_per_node: usize,
}

impl Default for ValidationLimits {
    fn default() -> Self {
        ValidationLimits {
            max_nodes: 1_000,
            max_edges: 5_000,
            max_template_len: 64 * 1024,
            max_tools_per_node: 64,
        }
    }
}
