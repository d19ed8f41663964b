//! The `router` node: a model picks one out-edge. The choice is constrained — the allowed targets are an
//! `enum` in the arguments of a forced `choose_route` tool — validated, and retried once.

use pipecat_llm::{ChatRequest, Message, ToolChoice, ToolDef};
use serde_json::{Value, json};

use super::model::{Candidates, chat};
use super::{NodeFailure, NodeMeta, NodeSuccess};
use crate::document::RouterNode;
use crate::run::Shared;
use crate::workflow::{prompt_name, system_name};

const TOOL: &str = "choose_route";

pub(crate) async fn run(
    shared: &Shared<'_>,
    i: usize,
    node: &RouterNode,
    ctx: &minijinja::Value,
    meta: &mut NodeMeta,
) -> Result<NodeSuccess, NodeFailure> {
    let workflow = shared.workflow;
    let node_id = workflow.doc.nodes[i].id.as_str();
    let cap = shared.limits.max_template_output;
    let prompt = workflow
        .templates
        .render(&prompt_name(i), ctx, cap)
        .map_err(|e| NodeFailure::template("prompt", e))?;
    let extra = match &node.system {
        Some(_) => workflow
            .templates
            .render(&system_name(i), ctx, cap)
            .map_err(|e| NodeFailure::template("system", e))?,
        None => String::new(),
    };
    let edges: Vec<usize> = workflow.graph.out_edges[i].clone();
    let targets: Vec<&str> = edges
        .iter()
        .map(|&e| workflow.doc.edges[e].to.as_str())
        .collect();
    let routes: Vec<String> = edges
        .iter()
        .map(|&e| {
            let edge = &workflow.doc.edges[e];
            format!(
                "- {}: {}",
                edge.to,
                edge.description.as_deref().unwrap_or("")
            )
        })
        .collect();
    let system = format!(
        "{extra}\n\nYou route requests. Pick exactly one route by calling `{TOOL}`. Routes:\n{}",
        routes.join("\n")
    )
    .trim_start()
    .to_string();
    let mut request = ChatRequest {
        model: String::new(),
        system: Some(system),
        messages: vec![Message::User { content: prompt }],
        tools: vec![ToolDef {
            name: TOOL.into(),
            description: "Choose the route that fits the request best.".into(),
            parameters: json!({
                "type": "object",
                "properties": {"route": {"type": "string", "enum": targets}},
                "required": ["route"],
                "additionalProperties": false
            }),
        }],
        tool_choice: ToolChoice::Tool(TOOL.into()),
        temperature: Some(0.0),
        max_tokens: None,
        response_format: None,
    };
    let mut candidates = Candidates::new(&node.provider, &node.model, &node.fallbacks);
    for attempt in 0..2 {
        let response = chat(shared, node_id, &mut candidates, &mut request, false, meta).await?;
        let chosen = response
            .tool_calls
            .first()
            .and_then(|call| serde_json::from_str::<Value>(&call.arguments).ok())
            .and_then(|args| {
                args.get("route")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .or_else(|| {
                response
                    .content
                    .as_deref()
                    .map(|c| c.trim().trim_matches('"').to_string())
            });
        if let Some(k) = chosen
            .as_deref()
            .and_then(|c| targets.iter().position(|t| *t == c))
        {
            return Ok(NodeSuccess {
                value: Value::String(targets[k].to_string()),
                choice: Some(edges[k]),
            });
        }
        if attempt == 0 {
            let said = chosen.unwrap_or_default();
            let complaint = format!(
                "`{said}` is not a route. Choose exactly one of: {}.",
                targets.join(", ")
            );
            match response.tool_calls.first() {
                Some(call) => {
                    request.messages.push(Message::Assistant {
                        content: response.content.clone(),
                        tool_calls: vec![call.clone()],
                    });
                    request.messages.push(Message::Tool {
                        call_id: call.id.clone(),
                        content: complaint,
                        is_error: true,
                    });
                }
                None => {
                    request.messages.push(Message::Assistant {
                        content: response.content.clone(),
                        tool_calls: Vec::new(),
                    });
                    request.messages.push(Message::User { content: complaint });
                }
            }
        }
    }
    Err(NodeFailure::new(
        "invalid_route_choice",
        format!(
            "the model did not choose one of the routes {}",
            targets.join(", ")
        ),
    ))
}
