//! One module per node type; `run_node` dispatches.

mod calls;
mod llm;
mod model;
mod router;
mod tool;

use pipecat_llm::Usage;
use serde_json::Value;

use crate::document::NodeKind;
use crate::run::Shared;
use crate::template::RenderError;
use crate::workflow::condition_name;

/// A node's result.
pub(crate) struct NodeSuccess {
    /// The output (text, or JSON for structured output).
    pub(crate) value: Value,
    /// For branching nodes: the index of the edge taken.
    pub(crate) choice: Option<usize>,
}

/// Why a node failed.
#[derive(Debug)]
pub(crate) struct NodeFailure {
    pub(crate) code: String,
    pub(crate) message: String,
}

impl NodeFailure {
    pub(crate) fn new(code: &str, message: impl Into<String>) -> NodeFailure {
        NodeFailure {
            code: code.to_string(),
            message: message.into(),
        }
    }

    pub(crate) fn template(what: &str, e: RenderError) -> NodeFailure {
        NodeFailure::new("template_error", format!("{what}: {e}"))
    }
}

/// What a model-calling node reports besides its result, also when it fails.
#[derive(Debug, Default)]
pub(crate) struct NodeMeta {
    pub(crate) usage: Usage,
    /// Time spent waiting on providers (every call and attempt of the node), in milliseconds.
    pub(crate) provider_ms: f64,
    pub(crate) provider: Option<String>,
    pub(crate) model: Option<String>,
}

/// Runs node `i` with the render context `ctx`.
pub(crate) async fn run_node(
    shared: &Shared<'_>,
    i: usize,
    ctx: &minijinja::Value,
    meta: &mut NodeMeta,
) -> Result<NodeSuccess, NodeFailure> {
    let node = &shared.workflow.doc.nodes[i];
    let cap = shared.limits.max_template_output;
    match &node.kind {
        NodeKind::Template(_) => {
            let text = shared
                .workflow
                .templates
                .render(&format!("nodes[{i}].template"), ctx, cap)
                .map_err(|e| NodeFailure::template("template", e))?;
            Ok(NodeSuccess {
                value: Value::String(text),
                choice: None,
            })
        }
        NodeKind::Condition(_) => {
            for &e in &shared.workflow.graph.out_edges[i] {
                let edge = &shared.workflow.doc.edges[e];
                if edge.condition.is_some() {
                    let holds = shared
                        .workflow
                        .templates
                        .eval_condition(&condition_name(e), ctx)
                        .map_err(|err| {
                            NodeFailure::template(
                                &format!("condition of edge to `{}`", edge.to),
                                err,
                            )
                        })?;
                    if holds {
                        return Ok(NodeSuccess {
                            value: Value::String(edge.to.clone()),
                            choice: Some(e),
                        });
                    }
                }
            }
            match shared.workflow.graph.out_edges[i]
                .iter()
                .find(|&&e| shared.workflow.doc.edges[e].default)
            {
                Some(&e) => Ok(NodeSuccess {
                    value: Value::String(shared.workflow.doc.edges[e].to.clone()),
                    choice: Some(e),
                }),
                None => Err(NodeFailure::new(
                    "no_condition_matched",
                    "no edge condition holds and there is no default edge",
                )),
            }
        }
        NodeKind::Tool(tool) => tool::run(shared, i, tool, ctx).await,
        NodeKind::Llm(llm) => llm::run(shared, i, llm, ctx, meta).await,
        NodeKind::Router(router) => router::run(shared, i, router, ctx, meta).await,
    }
}
