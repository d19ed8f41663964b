//! The `llm` node: system + rendered prompt, a tool loop, optional structured output, fallbacks.

use std::collections::HashMap;

use futures::future::join_all;
use pipecat_llm::{ChatRequest, Message, ResponseFormat, ToolChoice, ToolDef};
use serde_json::Value;

use super::calls::{Call, call_tool, safe_tool_names};
use super::model::{Candidates, chat};
use super::{NodeFailure, NodeMeta, NodeSuccess};
use crate::document::LlmNode;
use crate::events::EventKind;
use crate::run::Shared;
use crate::workflow::{prompt_name, system_name};
use crate::{ToolFailure, ToolSpec};

pub(crate) async fn run(
    shared: &Shared<'_>,
    i: usize,
    node: &LlmNode,
    ctx: &minijinja::Value,
    meta: &mut NodeMeta,
) -> Result<NodeSuccess, NodeFailure> {
    let node_id = shared.workflow.doc.nodes[i].id.as_str();
    let templates = &shared.workflow.templates;
    let cap = shared.limits.max_template_output;
    let prompt = templates
        .render(&prompt_name(i), ctx, cap)
        .map_err(|e| NodeFailure::template("prompt", e))?;
    let system = match &node.system {
        Some(_) => Some(
            templates
                .render(&system_name(i), ctx, cap)
                .map_err(|e| NodeFailure::template("system", e))?,
        ),
        None => None,
    };

    // Tools, under provider-safe names.
    let names = safe_tool_names(&node.tools);
    let mut by_name: HashMap<&str, &str> = HashMap::new();
    let mut tools = Vec::with_capacity(node.tools.len());
    for (reference, name) in node.tools.iter().zip(&names) {
        let Some(ToolSpec {
            description,
            parameters,
            ..
        }) = shared.tools.spec(reference)
        else {
            return Err(NodeFailure::new(
                "unresolved_tool",
                format!("tool `{reference}` is not available"),
            ));
        };
        by_name.insert(name, reference);
        tools.push(ToolDef {
            name: name.clone(),
            description,
            parameters,
        });
    }

    let schema = shared.workflow.schemas.get(&i);
    let mut request = ChatRequest {
        model: String::new(),
        system,
        messages: vec![Message::User { content: prompt }],
        tool_choice: ToolChoice::Auto,
        tools,
        temperature: node.temperature,
        max_tokens: node.max_tokens,
        response_format: node.output_schema.as_ref().map(|schema| ResponseFormat {
            name: schema_name(node_id),
            schema: schema.clone(),
        }),
    };
    let max_rounds = node
        .max_tool_rounds
        .unwrap_or(shared.limits.max_tool_rounds)
        .min(shared.limits.max_tool_rounds);
    let stream = node.stream.unwrap_or(true);
    let mut candidates = Candidates::new(&node.provider, &node.model, &node.fallbacks);
    let mut rounds = 0u32;
    let mut retried = false;
    loop {
        let response = chat(shared, node_id, &mut candidates, &mut request, stream, meta).await?;
        if !response.tool_calls.is_empty() {
            if rounds >= max_rounds {
                return Err(NodeFailure::new(
                    "max_tool_rounds_exceeded",
                    format!("the model still asked for tools after {max_rounds} tool rounds"),
                ));
            }
            rounds += 1;
            let calls = response.tool_calls.iter().map(|call| {
                let reference = by_name.get(call.name.as_str()).copied();
                let arguments = match (reference, serde_json::from_str::<Value>(&call.arguments)) {
                    (None, _) => Err((
                        parse_or_text(&call.arguments),
                        failure(
                            "unknown_tool",
                            format!("there is no tool named `{}`", call.name),
                        ),
                    )),
                    (Some(_), Ok(v @ Value::Object(_))) => Ok(v),
                    (Some(_), Ok(v)) => Err((
                        v,
                        failure(
                            "invalid_arguments",
                            "tool arguments must be a JSON object".into(),
                        ),
                    )),
                    (Some(_), Err(e)) => Err((
                        Value::String(call.arguments.clone()),
                        failure(
                            "invalid_arguments",
                            format!("tool arguments are not valid JSON: {e}"),
                        ),
                    )),
                };
                let call = Call {
                    node_id,
                    reference: reference.unwrap_or(call.name.as_str()),
                    call_id: call.id.clone(),
                    arguments,
                };
                call_tool(shared, call)
            });
            let results = join_all(calls).await;
            request.messages.push(Message::Assistant {
                content: response.content.clone(),
                tool_calls: response.tool_calls.clone(),
            });
            for (call, result) in response.tool_calls.iter().zip(results) {
                let (content, is_error) = match result {
                    Ok(text) => (text, false),
                    Err(f) => (format!("error ({}): {}", f.code, f.message), true),
                };
                request.messages.push(Message::Tool {
                    call_id: call.id.clone(),
                    content,
                    is_error,
                });
            }
            continue;
        }
        let text = response.content.unwrap_or_default();
        let Some(validator) = schema else {
            if !(stream && shared.emitter.listening()) {
                shared
                    .emitter
                    .emit(EventKind::Token {
                        node_id: node_id.to_string(),
                        text: text.clone(),
                    })
                    .await;
            }
            return Ok(NodeSuccess {
                value: Value::String(text),
                choice: None,
            });
        };
        let problem = match serde_json::from_str::<Value>(&text) {
            Ok(value) => {
                let errors: Vec<String> = validator
                    .iter_errors(&value)
                    .take(5)
                    .map(|e| e.to_string())
                    .collect();
                if errors.is_empty() {
                    return Ok(NodeSuccess {
                        value,
                        choice: None,
                    });
                }
                errors.join("; ")
            }
            Err(e) => format!("the answer is not JSON: {e}"),
        };
        if retried {
            return Err(NodeFailure::new(
                "invalid_structured_output",
                format!("the answer does not match the output schema after a retry: {problem}"),
            ));
        }
        retried = true;
        request.messages.push(Message::Assistant {
            content: Some(text),
            tool_calls: Vec::new(),
        });
        request.messages.push(Message::User {
            content: format!(
                "Your answer does not match the required JSON Schema: {problem}. Answer again with only JSON that matches the schema."
            ),
        });
    }
}

fn failure(code: &str, message: String) -> ToolFailure {
    ToolFailure {
        code: code.to_string(),
        message,
    }
}

fn parse_or_text(arguments: &str) -> Value {
    serde_json::from_str(arguments).unwrap_or_else(|_| Value::String(arguments.to_string()))
}

/// A `response_format` name from the node id (`^[a-zA-Z0-9_-]+$`).
fn schema_name(node_id: &str) -> String {
    let name: String = node_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if name.is_empty() {
        "output".into()
    } else {
        name
    }
}
