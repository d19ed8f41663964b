//! The workflow document (CONTRACT.md §6) as serde types.
//!
//! Every struct rejects unknown fields. Besides the contract's fields the document accepts these
//! extensions:
//!
//! - top-level `"plugins": {"<plugin>": {"config": {"k": "v"}, "allowed_hosts": ["https://api.open-meteo.com"],
//!   "limits": {"timeout_ms": 5000, "fuel": 100000000, "memory_mb": 64}}}` — grants for each plugin. The engine
//!   does not interpret them; the server hands them to the sandbox when it builds the run's tool runner.
//! - top-level `"limits": {"max_steps": 50, "run_timeout_ms": 60000, ...}` — run limits ([`LimitsDoc`]); they can
//!   only lower the operator's limits, never raise them.
//! - edges may carry `"condition"` (a minijinja expression, for edges leaving a `condition` node: the first edge
//!   whose expression is true is taken, otherwise the edge with `"default": true`) and `"description"` (for edges
//!   leaving a `router` node: what the model reads to pick a route).
//! - `llm` nodes accept `fallbacks: [{"provider", "model"}]` and `stream` (default `true`: stream tokens when
//!   someone listens to the run's events).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A whole workflow document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowDoc {
    /// Name of the workflow.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The nodes, in document order.
    pub nodes: Vec<NodeDoc>,
    /// Directed edges between nodes.
    #[serde(default)]
    pub edges: Vec<EdgeDoc>,
    /// Which node's output is the run's output.
    pub output: OutputDoc,
    /// Grants per plugin name (opaque to the engine).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub plugins: BTreeMap<String, PluginGrant>,
    /// Run limits chosen by the author (capped by the operator's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitsDoc>,
}

/// The `output` of a workflow: one node, or a map of names to nodes (a JSON object output).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OutputDoc {
    /// The run's output is this node's output.
    Node(String),
    /// The run's output is an object `{name: output of node}`.
    Map(BTreeMap<String, String>),
}

impl OutputDoc {
    /// The node ids the output reads, with the JSON path of each.
    pub fn node_refs(&self) -> Vec<(String, &str)> {
        match self {
            OutputDoc::Node(id) => vec![("output".to_string(), id.as_str())],
            OutputDoc::Map(map) => map
                .iter()
                .map(|(k, v)| (format!("output.{k}"), v.as_str()))
                .collect(),
        }
    }
}

/// One node: an id and its type-specific fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeDoc {
    /// Unique id within the workflow.
    pub id: String,
    /// The type (`"type"` in JSON) and its fields.
    #[serde(flatten)]
    pub kind: NodeKind,
}

/// The node types.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NodeKind {
    /// A model call that may use tools.
    Llm(LlmNode),
    /// One tool call with templated arguments.
    Tool(ToolNode),
    /// Text from a template.
    Template(TemplateNode),
    /// Routes to the first out-edge whose `condition` holds.
    Condition(ConditionNode),
    /// A model picks one of the out-edges from their descriptions.
    Router(RouterNode),
}

impl NodeKind {
    /// The `type` name as in the document.
    pub fn type_name(&self) -> &'static str {
        match self {
            NodeKind::Llm(_) => "llm",
            NodeKind::Tool(_) => "tool",
            NodeKind::Template(_) => "template",
            NodeKind::Condition(_) => "condition",
            NodeKind::Router(_) => "router",
        }
    }
}

/// The node type names, for error messages.
pub const NODE_TYPES: [&str; 5] = ["llm", "tool", "template", "condition", "router"];

impl<'de> Deserialize<'de> for NodeDoc {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut map = serde_json::Map::deserialize(deserializer)?;
        let id = match map.remove("id") {
            Some(Value::String(id)) => id,
            Some(_) => return Err(D::Error::custom("`id` must be a string")),
            None => return Err(D::Error::missing_field("id")),
        };
        let kind = NodeKind::deserialize(Value::Object(map)).map_err(D::Error::custom)?;
        Ok(NodeDoc { id, kind })
    }
}

/// An `llm` node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmNode {
    /// Provider name (e.g. `openai`).
    pub provider: String,
    /// Model name.
    pub model: String,
    /// System prompt (a template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// User prompt (a template).
    pub prompt: String,
    /// Tool references `plugin.tool`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
    /// Upper bound on tool rounds (capped by the run limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tool_rounds: Option<u32>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Upper bound on generated tokens per call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// JSON Schema of a structured answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    /// Other provider/model pairs tried in order when a call fails.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallbacks: Vec<ModelRef>,
    /// Stream tokens when the run has a listener (default `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
}

/// A provider and model pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelRef {
    /// Provider name.
    pub provider: String,
    /// Model name.
    pub model: String,
}

/// A `tool` node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolNode {
    /// Tool reference `plugin.tool`.
    pub tool: String,
    /// Arguments; every string inside is a template. A string that is exactly one `{{ expr }}` keeps the
    /// JSON type of the expression's value.
    #[serde(default)]
    pub arguments: serde_json::Map<String, Value>,
}

/// A `template` node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateNode {
    /// The template text.
    pub template: String,
}

/// A `condition` node: its out-edges carry the conditions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionNode {
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A `router` node: a model picks one out-edge from the edges' descriptions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterNode {
    /// Provider name.
    pub provider: String,
    /// Model name.
    pub model: String,
    /// Extra system instructions (a template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// What the model routes (a template; default `{{ input }}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Other provider/model pairs tried in order when a call fails.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallbacks: Vec<ModelRef>,
}

/// An edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeDoc {
    /// Source node id.
    pub from: String,
    /// Target node id.
    pub to: String,
    /// For edges leaving a `condition` node: a minijinja expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// For edges leaving a `condition` node: taken when no condition holds.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
    /// For edges leaving a `router` node: what this route is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Grants for one plugin; passed through opaque to the tool runner.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginGrant {
    /// Configuration values the plugin may read.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Origins the plugin may reach over HTTP.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Sandbox limits per call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<PluginLimits>,
}

/// Sandbox limits for one plugin's calls.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginLimits {
    /// Wall-clock deadline per call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Fuel per call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// Memory cap per call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
}

/// Run limits set in the document; each can only lower the engine's limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsDoc {
    /// Node executions per run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_steps: Option<u32>,
    /// Wall-clock time per run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_timeout_ms: Option<u64>,
    /// Tool rounds per LLM node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tool_rounds: Option<u32>,
    /// Tokens (input + output) per run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens_per_run: Option<u64>,
    /// Tool calls in flight at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_tool_calls: Option<u32>,
}
