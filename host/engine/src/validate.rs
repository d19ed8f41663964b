//! Parsing and validation of workflow documents. Every problem is reported, each with a JSON path and a
//! stable code; all graph checks are linear in the document's size and sizes are bounded first.
//!
//! Codes: `invalid_document`, `too_large`, `missing_field`, `unknown_field`, `invalid_field`,
//! `unknown_node_type`, `missing_id`, `duplicate_id`, `unknown_node`, `duplicate_edge`, `cycle`,
//! `unknown_output_node`, `output_unreachable`, `invalid_tool_reference`, `unresolved_tool`,
//! `unknown_provider`, `invalid_template`, `template_unknown_node`, `invalid_condition`,
//! `invalid_output_schema`, `condition_without_edges`, `edge_without_condition`, `multiple_default_edges`,
//! `unexpected_edge_condition`, `router_without_edges`, `router_edge_without_description`.

use std::collections::HashSet;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::ToolSpec;
use crate::document::{
    EdgeDoc, LimitsDoc, NODE_TYPES, NodeDoc, NodeKind, OutputDoc, PluginGrant, WorkflowDoc,
};
use crate::graph::Graph;
use crate::limits::ValidationLimits;
use crate::rules::{check_branches, check_env, check_template_refs};
use crate::workflow::{Workflow, prompt_name, system_name};

/// One problem found in a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Problem {
    /// JSON path of the offending part, e.g. `nodes[2].tools[0]`.
    pub path: String,
    /// Stable machine-readable code.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

impl Problem {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, code: &str, message: impl Into<String>) -> Problem {
        Problem {
            path: path.into(),
            code: code.to_string(),
            message: message.into(),
        }
    }
}

/// What validation needs to know about the world outside the document.
pub trait ValidationEnv {
    /// The tool behind a `plugin.tool` reference, if it resolves.
    fn tool(&self, reference: &str) -> Option<ToolSpec>;
    /// Whether a provider of this name is configured.
    fn has_provider(&self, name: &str) -> bool;
}

/// Parses a document and checks everything that does not depend on the environment, with default limits.
pub fn parse(doc: &Value) -> Result<Workflow, Vec<Problem>> {
    parse_with(doc, &ValidationLimits::default())
}

/// [`parse`] with explicit size limits.
pub fn parse_with(doc: &Value, limits: &ValidationLimits) -> Result<Workflow, Vec<Problem>> {
    let (workflow, problems) = analyze(doc, limits);
    match workflow {
        Some(workflow) if problems.is_empty() => Ok(workflow),
        _ => Err(problems),
    }
}

/// Checks a parsed workflow against the environment: tool references and providers.
pub fn validate(workflow: &Workflow, env: &dyn ValidationEnv) -> Vec<Problem> {
    let mut problems = Vec::new();
    let nodes: Vec<Option<&NodeDoc>> = workflow.doc.nodes.iter().map(Some).collect();
    check_env(&nodes, env, &mut problems);
    problems
}

/// Parses and validates in one go, reporting every problem of both steps.
pub fn check(
    doc: &Value,
    env: &dyn ValidationEnv,
    limits: &ValidationLimits,
) -> Result<Workflow, Vec<Problem>> {
    let (workflow, mut problems) = analyze(doc, limits);
    if let Some(nodes) = doc.get("nodes").and_then(Value::as_array)
        && nodes.len() <= limits.max_nodes
    {
        let parsed: Vec<Option<NodeDoc>> = nodes
            .iter()
            .map(|n| NodeDoc::deserialize_value(n).ok())
            .collect();
        let refs: Vec<Option<&NodeDoc>> = parsed.iter().map(Option::as_ref).collect();
        check_env(&refs, env, &mut problems);
    }
    match workflow {
        Some(workflow) if problems.is_empty() => Ok(workflow),
        _ => Err(problems),
    }
}

impl NodeDoc {
    fn deserialize_value(value: &Value) -> Result<NodeDoc, serde_json::Error> {
        serde::Deserialize::deserialize(value)
    }
}

/// `plugin.tool`, both parts non-empty.
pub(crate) fn is_tool_reference(reference: &str) -> bool {
    matches!(reference.split_once('.'), Some((p, t)) if !p.is_empty() && !t.is_empty())
}

const TOP_FIELDS: [&str; 7] = [
    "name",
    "description",
    "nodes",
    "edges",
    "output",
    "plugins",
    "limits",
];

/// Parses what it can and collects every environment-independent problem.
fn analyze(doc: &Value, limits: &ValidationLimits) -> (Option<Workflow>, Vec<Problem>) {
    let mut problems = Vec::new();
    let Some(top) = doc.as_object() else {
        return (
            None,
            vec![Problem::new(
                "",
                "invalid_document",
                "the workflow document must be a JSON object",
            )],
        );
    };
    for key in top.keys().filter(|k| !TOP_FIELDS.contains(&k.as_str())) {
        problems.push(Problem::new(
            key.clone(),
            "unknown_field",
            format!("unknown field `{key}`"),
        ));
    }
    let name: Option<String> = field(top.get("name"), "name", true, &mut problems);
    let description: Option<String> =
        field(top.get("description"), "description", false, &mut problems);
    let output: Option<OutputDoc> = field(top.get("output"), "output", true, &mut problems);
    let plugins: Option<std::collections::BTreeMap<String, PluginGrant>> =
        field(top.get("plugins"), "plugins", false, &mut problems);
    let run_limits: Option<LimitsDoc> = field(top.get("limits"), "limits", false, &mut problems);

    let raw_nodes = match top.get("nodes") {
        Some(Value::Array(nodes)) => nodes.as_slice(),
        Some(_) => {
            problems.push(Problem::new(
                "nodes",
                "invalid_field",
                "`nodes` must be an array",
            ));
            &[]
        }
        None => {
            problems.push(Problem::new(
                "nodes",
                "missing_field",
                "missing field `nodes`",
            ));
            &[]
        }
    };
    let raw_edges = match top.get("edges") {
        Some(Value::Array(edges)) => edges.as_slice(),
        None => &[],
        Some(_) => {
            problems.push(Problem::new(
                "edges",
                "invalid_field",
                "`edges` must be an array",
            ));
            &[]
        }
    };
    if raw_nodes.len() > limits.max_nodes || raw_edges.len() > limits.max_edges {
        problems.push(Problem::new(
            if raw_nodes.len() > limits.max_nodes {
                "nodes"
            } else {
                "edges"
            },
            "too_large",
            format!(
                "a workflow may have at most {} nodes and {} edges (this one has {} and {})",
                limits.max_nodes,
                limits.max_edges,
                raw_nodes.len(),
                raw_edges.len()
            ),
        ));
        return (None, problems);
    }

    let nodes: Vec<Option<NodeDoc>> = raw_nodes
        .iter()
        .enumerate()
        .map(|(i, raw)| node(i, raw, limits, &mut problems))
        .collect();
    let edges: Vec<Option<EdgeDoc>> = raw_edges
        .iter()
        .enumerate()
        .map(|(e, raw)| field(Some(raw), &format!("edges[{e}]"), true, &mut problems))
        .collect();

    // ids
    let ids: Vec<&str> = nodes
        .iter()
        .map(|n| n.as_ref().map_or("", |n| n.id.as_str()))
        .collect();
    let mut seen = HashSet::with_capacity(ids.len());
    for (i, node) in nodes.iter().enumerate() {
        let Some(node) = node else { continue };
        if node.id.trim().is_empty() {
            problems.push(Problem::new(
                format!("nodes[{i}].id"),
                "missing_id",
                "node id must not be empty",
            ));
        } else if !seen.insert(node.id.as_str()) {
            problems.push(Problem::new(
                format!("nodes[{i}].id"),
                "duplicate_id",
                format!("duplicate node id `{}`", node.id),
            ));
        }
    }
    let all_nodes_parsed = nodes.iter().all(Option::is_some);
    // Ids as written, also of nodes that failed to parse, so their edges are not reported twice.
    let raw_ids: HashSet<&str> = raw_nodes
        .iter()
        .filter_map(|n| n.get("id").and_then(Value::as_str))
        .collect();

    // edges
    let mut pairs = HashSet::with_capacity(edges.len());
    for (e, edge) in edges.iter().enumerate() {
        let Some(edge) = edge else { continue };
        for (end, id) in [("from", &edge.from), ("to", &edge.to)] {
            if !raw_ids.contains(id.as_str()) {
                problems.push(Problem::new(
                    format!("edges[{e}].{end}"),
                    "unknown_node",
                    format!("no node has id `{id}`"),
                ));
            }
        }
        if !pairs.insert((edge.from.as_str(), edge.to.as_str())) {
            problems.push(Problem::new(
                format!("edges[{e}]"),
                "duplicate_edge",
                "the same edge appears twice",
            ));
        }
    }

    let valid_edges: Vec<EdgeDoc> = edges.iter().flatten().cloned().collect();
    let graph = Graph::build(&ids, &valid_edges);
    let mut cyclic = HashSet::new();
    if let Err(stuck) = graph.topo_order() {
        let names: Vec<&str> = stuck.iter().take(10).map(|&i| ids[i]).collect();
        cyclic.extend(stuck.iter().copied());
        problems.push(Problem::new(
            "edges",
            "cycle",
            format!(
                "the graph has a cycle through (or downstream of) nodes {}",
                names.join(", ")
            ),
        ));
    }

    if let Some(output) = &output {
        for (path, id) in output.node_refs() {
            match graph.index.get(id) {
                None if !raw_ids.contains(id) => problems.push(Problem::new(
                    path,
                    "unknown_output_node",
                    format!("no node has id `{id}`"),
                )),
                Some(i) if cyclic.contains(i) => problems.push(Problem::new(
                    path,
                    "output_unreachable",
                    format!("output node `{id}` can never run: it is on or after a cycle"),
                )),
                _ => {}
            }
        }
    }

    check_branches(&nodes, &valid_edges, &graph, &mut problems);

    let (Some(name), Some(output), true) = (
        name,
        output,
        all_nodes_parsed && edges.iter().all(Option::is_some),
    ) else {
        return (None, problems);
    };
    let doc = WorkflowDoc {
        name,
        description,
        nodes: nodes.into_iter().flatten().collect(),
        edges: valid_edges,
        output,
        plugins: plugins.unwrap_or_default(),
        limits: run_limits,
    };
    let (workflow, compile_problems) = Workflow::compile(doc, graph);
    problems.extend(compile_problems);
    check_template_refs(&workflow, &mut problems);
    (Some(workflow), problems)
}

/// Deserializes one node, mapping serde's errors to paths and codes.
fn node(
    i: usize,
    raw: &Value,
    limits: &ValidationLimits,
    problems: &mut Vec<Problem>,
) -> Option<NodeDoc> {
    let path = format!("nodes[{i}]");
    let Some(obj) = raw.as_object() else {
        problems.push(Problem::new(
            path,
            "invalid_field",
            "a node must be an object",
        ));
        return None;
    };
    match obj.get("id") {
        None => problems.push(Problem::new(
            format!("{path}.id"),
            "missing_id",
            "node has no `id`",
        )),
        Some(Value::String(_)) => {}
        Some(_) => problems.push(Problem::new(
            format!("{path}.id"),
            "invalid_field",
            "`id` must be a string",
        )),
    }
    match obj.get("type") {
        Some(Value::String(t)) if NODE_TYPES.contains(&t.as_str()) => {}
        Some(t) => {
            problems.push(Problem::new(
                format!("{path}.type"),
                "unknown_node_type",
                format!(
                    "unknown node type {t}; expected one of {}",
                    NODE_TYPES.join(", ")
                ),
            ));
            return None;
        }
        None => {
            problems.push(Problem::new(
                format!("{path}.type"),
                "missing_field",
                "node has no `type`",
            ));
            return None;
        }
    }
    if !matches!(obj.get("id"), Some(Value::String(_))) {
        return None;
    }
    let node: NodeDoc = field(Some(raw), &path, true, problems)?;
    let size_problem = |problems: &mut Vec<Problem>, p: String, what: &str| {
        problems.push(Problem::new(
            p,
            "too_large",
            format!("{what} is over {} bytes", limits.max_template_len),
        ))
    };
    match &node.kind {
        NodeKind::Llm(llm) => {
            if llm.prompt.len() > limits.max_template_len {
                size_problem(problems, prompt_name(i), "prompt");
            }
            if llm
                .system
                .as_ref()
                .is_some_and(|s| s.len() > limits.max_template_len)
            {
                size_problem(problems, system_name(i), "system prompt");
            }
            if llm.tools.len() > limits.max_tools_per_node {
                problems.push(Problem::new(
                    format!("{path}.tools"),
                    "too_large",
                    format!("at most {} tools per node", limits.max_tools_per_node),
                ));
            }
            for (k, tool) in llm.tools.iter().enumerate() {
                if !is_tool_reference(tool) {
                    problems.push(bad_reference(format!("{path}.tools[{k}]"), tool));
                }
            }
        }
        NodeKind::Tool(tool) if !is_tool_reference(&tool.tool) => {
            problems.push(bad_reference(format!("{path}.tool"), &tool.tool));
        }
        NodeKind::Template(t) if t.template.len() > limits.max_template_len => {
            size_problem(problems, format!("{path}.template"), "template");
        }
        _ => {}
    }
    Some(node)
}

fn bad_reference(path: String, reference: &str) -> Problem {
    Problem::new(
        path,
        "invalid_tool_reference",
        format!("`{reference}` is not a `<plugin>.<tool>` reference"),
    )
}

/// Deserializes a part of the document, mapping the serde error to a problem at `path`. An absent part is
/// `None`, and a problem when `required`.
fn field<T: DeserializeOwned>(
    raw: Option<&Value>,
    path: &str,
    required: bool,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    let Some(raw) = raw else {
        if required {
            problems.push(Problem::new(
                path,
                "missing_field",
                format!("missing field `{path}`"),
            ));
        }
        return None;
    };
    match T::deserialize(raw) {
        Ok(v) => Some(v),
        Err(e) => {
            problems.push(serde_problem(path, &e.to_string()));
            None
        }
    }
}

/// Maps a serde error message to a path and code (`unknown field `x``, `missing field `x``, types…).
fn serde_problem(path: &str, message: &str) -> Problem {
    let quoted = |prefix: &str| {
        message
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('`').next())
            .map(|name| format!("{path}.{name}").trim_start_matches('.').to_string())
    };
    if let Some(p) = quoted("unknown field `") {
        Problem::new(p, "unknown_field", message)
    } else if let Some(p) = quoted("missing field `") {
        Problem::new(p, "missing_field", message)
    } else {
        Problem::new(path, "invalid_field", message)
    }
}
