//! What a run produces: the run record, node records, tool call records and the REST body.

use pipecat_llm::Usage;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Final status of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// The output node produced the output.
    Success,
    /// A node failed or a run limit was hit.
    Error,
    /// The run's cancellation token fired.
    Cancelled,
}

/// Status of one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    /// The node ran and produced an output.
    Success,
    /// The node failed (or was stopped because the run ended).
    Error,
    /// The node was on a branch not taken.
    Skipped,
}

/// Why a run failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct RunError {
    /// Stable machine-readable code (`max_steps_exceeded`, `run_timeout`, `llm_rate_limited`, `tool_failed`, …).
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// The node that failed, when one did.
    pub node_id: Option<String>,
}

/// A code and a message (a node's or a tool call's error).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    /// Stable machine-readable code.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

/// One tool execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCallRecord {
    /// The node that made the call.
    pub node_id: String,
    /// The tool's own name (`get_weather`).
    pub tool: String,
    /// The plugin name (`weather`).
    pub plugin: String,
    /// Id of the call (the provider's id for LLM tool calls).
    pub call_id: String,
    /// The JSON arguments (a string holding the raw text when the model sent invalid JSON).
    pub input: Value,
    /// The tool's raw result text.
    pub result: Option<String>,
    /// Why the call failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
    /// Time spent in the call.
    pub duration_ms: f64,
    /// Start of the call, relative to the start of the run.
    pub started_offset_ms: f64,
}

/// One node's execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// The node id.
    pub node_id: String,
    /// The node type.
    #[serde(rename = "type")]
    pub node_type: String,
    /// How it ended.
    pub status: NodeStatus,
    /// Start, relative to the start of the run.
    pub offset_ms: f64,
    /// Time it took.
    pub duration_ms: f64,
    /// Why it failed.
    pub error: Option<ErrorInfo>,
    /// Tokens used (LLM and router nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// The provider that answered (LLM and router nodes; a fallback when one answered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The model that answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Of `duration_ms`, the time spent waiting on LLM providers (LLM and router nodes): the rest is tool
    /// calls and the host's own work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_ms: Option<f64>,
    /// The node chosen (condition and router nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choice: Option<String>,
}

/// The result of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunOutcome {
    /// The run id.
    pub run_id: Uuid,
    /// How the run ended.
    pub status: RunStatus,
    /// The output (text, or JSON for structured output or a map output).
    pub output: Option<Value>,
    /// Why the run failed.
    pub error: Option<RunError>,
    /// Every tool execution, in the order they started.
    pub tool_calls: Vec<ToolCallRecord>,
    /// Nodes that ran or were skipped, in the order they finished.
    pub nodes: Vec<NodeRecord>,
    /// Tokens of the whole run.
    pub usage: Usage,
    /// Wall-clock time of the run.
    pub duration_ms: f64,
}

/// The REST body of a finished run without its `run_id` (the payload of the `run_finished` event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunBody {
    /// How the run ended.
    pub status: RunStatus,
    /// The output, `null` unless the run succeeded.
    pub output: Value,
    /// Every tool execution, in order.
    pub tool_calls: Vec<ToolCallRecord>,
    /// Why the run failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RunError>,
    /// Tokens of the whole run.
    pub usage: Usage,
    /// Wall-clock time of the run.
    pub duration_ms: f64,
}

impl RunOutcome {
    /// The body of the `run_finished` event.
    pub fn body(&self) -> RunBody {
        RunBody {
            status: self.status,
            output: self.output.clone().unwrap_or(Value::Null),
            tool_calls: self.tool_calls.clone(),
            error: self.error.clone(),
            usage: self.usage,
            duration_ms: self.duration_ms,
        }
    }

    /// Exactly the REST body of CONTRACT.md §5: `run_id`, `status`, `output`, `tool_calls`, `error` when the
    /// run failed, plus `usage` and `duration_ms`.
    pub fn response_body(&self) -> Value {
        serde_json::to_value(self.response()).unwrap_or(Value::Null)
    }

    /// The REST body as a view of the outcome, serialized without building a [`Value`] first (the hot
    /// path writes it straight into the response).
    pub fn response(&self) -> ResponseBody<'_> {
        ResponseBody {
            run_id: self.run_id,
            status: self.status,
            output: self.output.as_ref().unwrap_or(&Value::Null),
            tool_calls: &self.tool_calls,
            error: self.error.as_ref(),
            usage: self.usage,
            duration_ms: self.duration_ms,
        }
    }
}

/// The REST body of a finished run (CONTRACT.md §5), borrowed from its [`RunOutcome`]: the fields of
/// [`RunBody`] after `run_id`, in the same order.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ResponseBody<'a> {
    run_id: Uuid,
    status: RunStatus,
    output: &'a Value,
    tool_calls: &'a [ToolCallRecord],
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a RunError>,
    usage: Usage,
    duration_ms: f64,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn outcome(error: Option<RunError>) -> RunOutcome {
        RunOutcome {
            run_id: Uuid::now_v7(),
            status: if error.is_some() {
                RunStatus::Error
            } else {
                RunStatus::Success
            },
            output: error.is_none().then(|| json!({"answer": 42})),
            error,
            tool_calls: Vec::new(),
            nodes: Vec::new(),
            usage: Usage::default(),
            duration_ms: 1.5,
        }
    }

    #[test]
    fn the_rest_body_is_the_run_id_then_the_run_finished_payload() {
        let failed = RunError {
            code: "tool_failed".into(),
            message: "boom".into(),
            node_id: Some("t".into()),
        };
        for outcome in [outcome(None), outcome(Some(failed))] {
            let text = serde_json::to_string(&outcome.response()).unwrap();
            assert!(
                text.starts_with(&format!("{{\"run_id\":\"{}\",", outcome.run_id)),
                "{text}"
            );
            let Value::Object(mut rest) = serde_json::from_str(&text).unwrap() else {
                panic!("not an object: {text}");
            };
            assert_eq!(
                rest.remove("run_id"),
                Some(json!(outcome.run_id.to_string()))
            );
            assert_eq!(
                Value::Object(rest),
                serde_json::to_value(outcome.body()).unwrap()
            );
            assert_eq!(
                serde_json::from_str::<Value>(&text).unwrap(),
                outcome.response_body()
            );
        }
    }
}
