//! OpenAI Chat Completions rendering of answers.

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::script::{Answer, Mode, fragments, sse_response, text_pieces};

pub(crate) fn respond(request: &Value, answer: &Answer, streaming: bool, mode: Mode) -> Response {
    let content = answer
        .text
        .clone()
        .or_else(|| answer.json.as_ref().map(Value::to_string));
    let finish = answer.finish_reason.clone().unwrap_or_else(|| {
        if answer.tool_calls.is_empty() {
            "stop"
        } else {
            "tool_calls"
        }
        .to_owned()
    });
    let usage = json!({
        "prompt_tokens": answer.usage.0,
        "completion_tokens": answer.usage.1,
        "total_tokens": answer.usage.0 + answer.usage.1,
    });
    if !streaming {
        if mode == Mode::Cut {
            return (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                "{\"id\": \"chatcmpl-fake\", \"choi",
            )
                .into_response();
        }
        let mut message = json!({"role": "assistant", "content": content});
        if !answer.tool_calls.is_empty() {
            let calls: Vec<Value> = answer
                .tool_calls
                .iter()
                .map(|(id, name, args)| {
                    json!({"id": id, "type": "function", "function": {"name": name, "arguments": args.to_string()}})
                })
                .collect();
            message["tool_calls"] = Value::Array(calls);
        }
        return Json(json!({
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 0,
            "model": answer.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage,
        }))
        .into_response();
    }

    let chunk = |choices: Value| {
        let c = json!({
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": answer.model,
            "choices": choices,
        });
        format!("data: {c}\n\n")
    };
    let delta = |d: Value| chunk(json!([{"index": 0, "delta": d, "finish_reason": null}]));
    let mut frames = vec![delta(json!({"role": "assistant", "content": ""}))];
    if let Some(text) = &content {
        for piece in text_pieces(text) {
            frames.push(delta(json!({"content": piece})));
        }
    }
    for (i, (id, name, args)) in answer.tool_calls.iter().enumerate() {
        frames.push(delta(json!({"tool_calls": [{
            "index": i, "id": id, "type": "function", "function": {"name": name, "arguments": ""}
        }]})));
        let args = args.to_string();
        for frag in fragments(&args) {
            frames.push(delta(
                json!({"tool_calls": [{"index": i, "function": {"arguments": frag}}]}),
            ));
        }
    }
    frames.push(chunk(
        json!([{"index": 0, "delta": {}, "finish_reason": finish}]),
    ));
    let include_usage = request
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if include_usage {
        let c = json!({
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": answer.model,
            "choices": [],
            "usage": usage,
        });
        frames.push(format!("data: {c}\n\n"));
    }
    frames.push("data: [DONE]\n\n".to_owned());
    sse_response(frames, mode)
}
