//! Anthropic Messages rendering of answers.

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::script::{Answer, Mode, fragments, sse_response, text_pieces};

fn stop_reason(answer: &Answer, forced_tool: bool) -> String {
    match answer.finish_reason.as_deref() {
        Some("stop") => "end_turn".to_owned(),
        Some("length") => "max_tokens".to_owned(),
        Some("tool_calls") => "tool_use".to_owned(),
        Some(other) => other.to_owned(),
        None if !answer.tool_calls.is_empty() || forced_tool => "tool_use".to_owned(),
        None => "end_turn".to_owned(),
    }
}

/// Content blocks of the answer: `(block, streamed pieces)`.
fn blocks(request: &Value, answer: &Answer) -> (Vec<Value>, bool) {
    let forced = request
        .pointer("/tool_choice/type")
        .and_then(Value::as_str)
        .filter(|t| *t == "tool")
        .and_then(|_| request.pointer("/tool_choice/name"))
        .and_then(Value::as_str);
    let mut out = Vec::new();
    let mut forced_tool = false;
    if let Some(text) = &answer.text {
        out.push(json!({"type": "text", "text": text}));
    }
    if let Some(value) = &answer.json {
        match forced {
            Some(name) => {
                forced_tool = true;
                out.push(
                    json!({"type": "tool_use", "id": "toolu_json", "name": name, "input": value}),
                );
            }
            None => out.push(json!({"type": "text", "text": value.to_string()})),
        }
    }
    for (id, name, args) in &answer.tool_calls {
        out.push(
            json!({"type": "tool_use", "id": format!("toolu_{id}"), "name": name, "input": args}),
        );
    }
    (out, forced_tool)
}

pub(crate) fn respond(request: &Value, answer: &Answer, streaming: bool, mode: Mode) -> Response {
    let (content, forced_tool) = blocks(request, answer);
    let stop = stop_reason(answer, forced_tool);
    if !streaming {
        if mode == Mode::Cut {
            return (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                "{\"id\": \"msg_fake\", \"conte",
            )
                .into_response();
        }
        return Json(json!({
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": answer.model,
            "content": content,
            "stop_reason": stop,
            "stop_sequence": null,
            "usage": {"input_tokens": answer.usage.0, "output_tokens": answer.usage.1},
        }))
        .into_response();
    }

    let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    let mut frames = vec![event(
        "message_start",
        json!({"type": "message_start", "message": {
            "id": "msg_fake", "type": "message", "role": "assistant", "model": answer.model,
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": answer.usage.0, "output_tokens": 1},
        }}),
    )];
    frames.push(event("ping", json!({"type": "ping"})));
    for (index, block) in content.iter().enumerate() {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => {
                let text = block
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                frames.push(event(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}),
                ));
                for piece in text_pieces(text) {
                    frames.push(event(
                        "content_block_delta",
                        json!({"type": "content_block_delta", "index": index,
                               "delta": {"type": "text_delta", "text": piece}}),
                    ));
                }
            }
            _ => {
                let input = block
                    .get("input")
                    .cloned()
                    .unwrap_or(Value::Null)
                    .to_string();
                frames.push(event(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": index, "content_block": {
                        "type": "tool_use", "id": block["id"], "name": block["name"], "input": {}
                    }}),
                ));
                for frag in fragments(&input) {
                    frames.push(event(
                        "content_block_delta",
                        json!({"type": "content_block_delta", "index": index,
                               "delta": {"type": "input_json_delta", "partial_json": frag}}),
                    ));
                }
            }
        }
        frames.push(event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
    }
    frames.push(event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null},
               "usage": {"output_tokens": answer.usage.1}}),
    ));
    frames.push(event("message_stop", json!({"type": "message_stop"})));
    sse_response(frames, mode)
}
