//! The `tool` node: render the arguments, call the tool, output its result text.

use serde_json::Value;

use super::calls::{Call, call_tool};
use super::{NodeFailure, NodeSuccess};
use crate::document::ToolNode;
use crate::run::Shared;

pub(crate) async fn run(
    shared: &Shared<'_>,
    i: usize,
    node: &ToolNode,
    ctx: &minijinja::Value,
) -> Result<NodeSuccess, NodeFailure> {
    let node_id = &shared.workflow.doc.nodes[i].id;
    let mut arguments = serde_json::Map::new();
    for (key, value) in &node.arguments {
        let path = format!("nodes[{i}].arguments.{key}");
        arguments.insert(key.clone(), render(shared, &path, value, ctx)?);
    }
    let call = Call {
        node_id,
        reference: &node.tool,
        call_id: format!(
            "{node_id}-{}",
            shared.call_seq.load(std::sync::atomic::Ordering::Relaxed)
        ),
        arguments: Ok(Value::Object(arguments)),
    };
    match call_tool(shared, call).await {
        Ok(text) => Ok(NodeSuccess {
            value: Value::String(text),
            choice: None,
        }),
        Err(failure) => Err(NodeFailure::new(
            "tool_failed",
            format!(
                "tool `{}` failed ({}): {}",
                node.tool, failure.code, failure.message
            ),
        )),
    }
}

/// Renders every string inside `value` (compiled under `path`).
fn render(
    shared: &Shared<'_>,
    path: &str,
    value: &Value,
    ctx: &minijinja::Value,
) -> Result<Value, NodeFailure> {
    let cap = shared.limits.max_template_output;
    Ok(match value {
        Value::String(_) => shared
            .workflow
            .templates
            .render_value(path, ctx, cap)
            .map_err(|e| NodeFailure::template(path, e))?,
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(k, item)| render(shared, &format!("{path}[{k}]"), item, ctx))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, item)| {
                    Ok((
                        key.clone(),
                        render(shared, &format!("{path}.{key}"), item, ctx)?,
                    ))
                })
                .collect::<Result<_, NodeFailure>>()?,
        ),
        other => other.clone(),
    })
}
