//! The rules of [`crate::validate`] that look across nodes and edges: environment (tools, providers),
//! branches (`condition` and `router` edges) and template references to upstream nodes.

use crate::document::{EdgeDoc, NodeDoc, NodeKind};
use crate::graph::Graph;
use crate::validate::{Problem, ValidationEnv, is_tool_reference};
use crate::workflow::{Workflow, prompt_name, system_name};

pub(crate) fn check_env(
    nodes: &[Option<&NodeDoc>],
    env: &dyn ValidationEnv,
    problems: &mut Vec<Problem>,
) {
    let provider = |path: String, name: &str, problems: &mut Vec<Problem>| {
        if !env.has_provider(name) {
            problems.push(Problem::new(
                path,
                "unknown_provider",
                format!("no provider named `{name}` is configured"),
            ));
        }
    };
    for (i, node) in nodes.iter().enumerate() {
        let Some(node) = node else { continue };
        match &node.kind {
            NodeKind::Llm(llm) => {
                provider(format!("nodes[{i}].provider"), &llm.provider, problems);
                for (k, f) in llm.fallbacks.iter().enumerate() {
                    provider(
                        format!("nodes[{i}].fallbacks[{k}].provider"),
                        &f.provider,
                        problems,
                    );
                }
                for (k, tool) in llm.tools.iter().enumerate() {
                    if is_tool_reference(tool) && env.tool(tool).is_none() {
                        problems.push(unresolved(format!("nodes[{i}].tools[{k}]"), tool));
                    }
                }
            }
            NodeKind::Router(router) => {
                provider(format!("nodes[{i}].provider"), &router.provider, problems);
                for (k, f) in router.fallbacks.iter().enumerate() {
                    provider(
                        format!("nodes[{i}].fallbacks[{k}].provider"),
                        &f.provider,
                        problems,
                    );
                }
            }
            NodeKind::Tool(tool) => {
                if is_tool_reference(&tool.tool) && env.tool(&tool.tool).is_none() {
                    problems.push(unresolved(format!("nodes[{i}].tool"), &tool.tool));
                }
            }
            NodeKind::Template(_) | NodeKind::Condition(_) => {}
        }
    }
}

fn unresolved(path: String, reference: &str) -> Problem {
    Problem::new(
        path,
        "unresolved_tool",
        format!("tool `{reference}` does not resolve to an uploaded plugin tool"),
    )
}

/// Rules for edges leaving `condition` and `router` nodes.
pub(crate) fn check_branches(
    nodes: &[Option<NodeDoc>],
    edges: &[EdgeDoc],
    graph: &Graph,
    problems: &mut Vec<Problem>,
) {
    for (i, node) in nodes.iter().enumerate() {
        let Some(node) = node else { continue };
        let Some(&gi) = graph.index.get(&node.id) else {
            continue;
        };
        if gi != i {
            continue;
        }
        let out = &graph.out_edges[i];
        match &node.kind {
            NodeKind::Condition(_) => {
                if out.is_empty() {
                    problems.push(Problem::new(
                        format!("nodes[{i}]"),
                        "condition_without_edges",
                        "a condition node needs out-edges",
                    ));
                }
                let mut defaults = 0;
                for &e in out {
                    let edge = &edges[e];
                    if edge.default {
                        defaults += 1;
                    } else if edge.condition.is_none() {
                        problems.push(Problem::new(
                            format!("edges[{e}]"),
                            "edge_without_condition",
                            "an edge leaving a condition node needs a `condition` or `\"default\": true`",
                        ));
                    }
                }
                if defaults > 1 {
                    problems.push(Problem::new(
                        format!("nodes[{i}]"),
                        "multiple_default_edges",
                        "at most one default edge",
                    ));
                }
            }
            NodeKind::Router(_) => {
                if out.is_empty() {
                    problems.push(Problem::new(
                        format!("nodes[{i}]"),
                        "router_without_edges",
                        "a router node needs out-edges",
                    ));
                }
                for &e in out {
                    if edges[e]
                        .description
                        .as_deref()
                        .is_none_or(|d| d.trim().is_empty())
                    {
                        problems.push(Problem::new(
                            format!("edges[{e}].description"),
                            "router_edge_without_description",
                            "an edge leaving a router node needs a `description` the model can choose by",
                        ));
                    }
                }
            }
            _ => {
                for &e in out {
                    if edges[e].condition.is_some() || edges[e].default {
                        problems.push(Problem::new(
                            format!("edges[{e}]"),
                            "unexpected_edge_condition",
                            "only edges leaving a condition node carry `condition` or `default`",
                        ));
                    }
                }
            }
        }
    }
}

/// Templates may read only nodes that exist and are upstream.
pub(crate) fn check_template_refs(workflow: &Workflow, problems: &mut Vec<Problem>) {
    for (i, node) in workflow.doc.nodes.iter().enumerate() {
        let names = template_names(i, &node.kind);
        if names.is_empty() {
            continue;
        }
        let mut upstream: Option<Vec<bool>> = None;
        for name in names {
            for id in workflow.templates.referenced_nodes(&name) {
                let ok = match workflow.graph.index.get(&id) {
                    Some(&j) => upstream.get_or_insert_with(|| workflow.graph.upstream_of(i))[j],
                    None => false,
                };
                if !ok {
                    problems.push(Problem::new(
                        name.clone(),
                        "template_unknown_node",
                        format!(
                            "template reads `nodes.{id}` but `{id}` is not a node upstream of `{}`",
                            node.id
                        ),
                    ));
                }
            }
        }
    }
}

fn template_names(i: usize, kind: &NodeKind) -> Vec<String> {
    match kind {
        NodeKind::Llm(llm) => {
            let mut v = vec![prompt_name(i)];
            if llm.system.is_some() {
                v.push(system_name(i));
            }
            v
        }
        NodeKind::Router(r) => {
            let mut v = vec![prompt_name(i)];
            if r.system.is_some() {
                v.push(system_name(i));
            }
            v
        }
        NodeKind::Template(_) => vec![format!("nodes[{i}].template")],
        NodeKind::Tool(t) => t
            .arguments
            .keys()
            .map(|k| format!("nodes[{i}].arguments.{k}"))
            .collect(),
        NodeKind::Condition(_) => Vec::new(),
    }
}
