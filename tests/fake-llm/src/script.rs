//! The reply vocabulary and the protocol-neutral answer it becomes.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::{anthropic, openai};

/// What the fake answers to one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A text answer. Streamed as several deltas (split after each space) when the request streams.
    Text(String),
    /// Tool calls `(name, arguments)`, ids `call_0`, `call_1`, …; streamed arguments are split into
    /// several fragments.
    ToolCalls(Vec<(String, Value)>),
    /// Text and tool calls in one answer.
    TextAndToolCalls(String, Vec<(String, Value)>),
    /// A structured answer: OpenAI gets the JSON text as content; Anthropic gets a `tool_use` block of
    /// the tool forced by `tool_choice` (or text when no tool is forced).
    Json(Value),
    /// Answers with the text of the last user message (a zero-latency default for benchmarks).
    Echo,
    /// One stateless tool round, decided from the request alone (so concurrent runs need no script):
    /// when the last message is a tool result (OpenAI: a `tool` message; Anthropic: a `user` message
    /// with a `tool_result` block) it answers `text`; otherwise it calls the first tool the request
    /// offers (`tools[0]`) with `arguments`; with no tools offered it answers `text`.
    ToolRound {
        /// The arguments of the tool call.
        arguments: Value,
        /// The answer once the tool result is back (or when no tool is offered).
        text: String,
    },
    /// A failure.
    Fault(Fault),
    /// The inner reply with this token usage instead of the computed one.
    WithUsage {
        /// The reply to serve.
        reply: Box<Reply>,
        /// Reported prompt tokens.
        input_tokens: u64,
        /// Reported completion tokens.
        output_tokens: u64,
    },
    /// The inner reply after a delay (before any byte of the response).
    Delayed(Duration, Box<Reply>),
    /// The inner reply with this finish reason (OpenAI wording: `stop`, `length`, `tool_calls`, …;
    /// mapped to Anthropic's `end_turn`, `max_tokens`, `tool_use`).
    WithFinishReason(String, Box<Reply>),
}

impl Reply {
    /// A text reply.
    pub fn text(text: impl Into<String>) -> Reply {
        Reply::Text(text.into())
    }

    /// A [`Reply::ToolRound`]: call the first offered tool with `arguments`, then answer `text`.
    pub fn tool_round(arguments: Value, text: impl Into<String>) -> Reply {
        Reply::ToolRound {
            arguments,
            text: text.into(),
        }
    }

    /// One tool call.
    pub fn tool_call(name: impl Into<String>, arguments: Value) -> Reply {
        Reply::ToolCalls(vec![(name.into(), arguments)])
    }

    /// This reply with the given usage.
    pub fn with_usage(self, input_tokens: u64, output_tokens: u64) -> Reply {
        Reply::WithUsage {
            reply: Box::new(self),
            input_tokens,
            output_tokens,
        }
    }
}

/// A failure the fake can play.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// HTTP 429 with `Retry-After: <secs>` and the provider's rate-limit error body.
    RateLimited {
        /// The `Retry-After` header value.
        retry_after_secs: u64,
    },
    /// This status with the provider's JSON error body carrying this message.
    Status(u16, String),
    /// HTTP 200 whose body (or first stream event) is not valid JSON.
    MalformedJson,
    /// A streamed answer that ends mid-way, without `[DONE]` / `message_stop`.
    /// Not streaming: a 200 JSON body cut in the middle.
    CutStream,
    /// A text answer sent only after this delay.
    SlowFirstByte(Duration),
    /// HTTP 502 with an HTML page (a proxy in front of the provider).
    Html,
    /// HTTP 529 `overloaded_error` (Anthropic's overload status).
    Overloaded,
    /// Never answers.
    Hang,
    /// Sends the first events of a streamed answer, then nothing more while keeping the connection open.
    /// Not streaming: the same as [`Fault::Hang`].
    StallStream,
}

/// Which wire protocol a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    OpenAi,
    Anthropic,
}

impl Protocol {
    /// The provider's JSON error body.
    pub(crate) fn error_body(self, kind: &str, message: &str) -> axum::Json<Value> {
        axum::Json(match self {
            Protocol::OpenAi => {
                json!({"error": {"message": message, "type": kind, "param": null, "code": null}})
            }
            Protocol::Anthropic => {
                json!({"type": "error", "error": {"type": kind, "message": message}})
            }
        })
    }
}

/// How much of a streamed answer to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Full,
    Cut,
    Stall,
}

/// A protocol-neutral answer.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub model: String,
    pub text: Option<String>,
    /// `(id, name, arguments JSON)`.
    pub tool_calls: Vec<(String, String, Value)>,
    pub json: Option<Value>,
    pub usage: (u64, u64),
    pub finish_reason: Option<String>,
}

pub(crate) async fn serve(protocol: Protocol, request: &Value, reply: Reply) -> Response {
    let mut reply = reply;
    let mut usage = None;
    let mut finish_reason = None;
    let mut mode = Mode::Full;
    let streaming = request
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let (text, calls, json) = loop {
        match reply {
            Reply::Text(t) => break (Some(t), vec![], None),
            Reply::ToolCalls(c) => break (None, c, None),
            Reply::TextAndToolCalls(t, c) => break (Some(t), c, None),
            Reply::Json(v) => break (None, vec![], Some(v)),
            Reply::Echo => break (Some(last_user_text(protocol, request)), vec![], None),
            Reply::ToolRound { arguments, text } => {
                match (
                    last_is_tool_result(protocol, request),
                    first_tool_name(protocol, request),
                ) {
                    (false, Some(name)) => break (None, vec![(name, arguments)], None),
                    _ => break (Some(text), vec![], None),
                }
            }
            Reply::WithUsage {
                reply: inner,
                input_tokens,
                output_tokens,
            } => {
                usage = Some((input_tokens, output_tokens));
                reply = *inner;
            }
            Reply::Delayed(d, inner) => {
                tokio::time::sleep(d).await;
                reply = *inner;
            }
            Reply::WithFinishReason(r, inner) => {
                finish_reason = Some(r);
                reply = *inner;
            }
            Reply::Fault(Fault::SlowFirstByte(d)) => {
                tokio::time::sleep(d).await;
                reply = Reply::Text("a slow answer".into());
            }
            Reply::Fault(Fault::Hang) => std::future::pending::<()>().await,
            Reply::Fault(Fault::StallStream) if !streaming => std::future::pending::<()>().await,
            Reply::Fault(Fault::StallStream) => {
                mode = Mode::Stall;
                reply = Reply::Text("this answer stalls after a few words".into());
            }
            Reply::Fault(Fault::CutStream) => {
                mode = Mode::Cut;
                reply = Reply::Text("this answer is cut before its end".into());
            }
            Reply::Fault(Fault::MalformedJson) => return malformed(streaming),
            Reply::Fault(fault) => return fault_response(protocol, &fault),
        }
    };
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("fake-model")
        .to_owned();
    let tool_calls: Vec<_> = calls
        .into_iter()
        .enumerate()
        .map(|(i, (name, args))| (format!("call_{i}"), name, args))
        .collect();
    let usage = usage.unwrap_or_else(|| {
        let output = text.as_deref().map(count_words).unwrap_or(0)
            + tool_calls
                .iter()
                .map(|(_, _, a)| count_words(&a.to_string()))
                .sum::<u64>()
            + json
                .as_ref()
                .map(|j| count_words(&j.to_string()))
                .unwrap_or(0);
        (count_request_words(request).max(1), output.max(1))
    });
    let answer = Answer {
        model,
        text,
        tool_calls,
        json,
        usage,
        finish_reason,
    };
    match protocol {
        Protocol::OpenAi => openai::respond(request, &answer, streaming, mode),
        Protocol::Anthropic => anthropic::respond(request, &answer, streaming, mode),
    }
}

fn malformed(streaming: bool) -> Response {
    if streaming {
        sse_response(
            vec!["data: {\"choices\": [{\"delta\": {\"content\": \"oops\"\n\n".to_owned()],
            Mode::Full,
        )
    } else {
        (
            [(header::CONTENT_TYPE, "application/json")],
            "{\"id\": \"x\", \"choices\": [ this is not json",
        )
            .into_response()
    }
}

fn fault_response(protocol: Protocol, fault: &Fault) -> Response {
    match fault {
        Fault::RateLimited { retry_after_secs } => {
            let kind = match protocol {
                Protocol::OpenAi => "rate_limit_exceeded",
                Protocol::Anthropic => "rate_limit_error",
            };
            let mut res = (
                StatusCode::TOO_MANY_REQUESTS,
                protocol.error_body(kind, "Rate limit reached, slow down"),
            )
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
            res
        }
        Fault::Status(code, message) => {
            let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let kind = if status.is_client_error() {
                "invalid_request_error"
            } else {
                "api_error"
            };
            (status, protocol.error_body(kind, message)).into_response()
        }
        Fault::Overloaded => {
            let status = StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            (
                status,
                protocol.error_body("overloaded_error", "Overloaded"),
            )
                .into_response()
        }
        Fault::Html => {
            let page = format!(
                "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body>\n\
                 <center><h1>502 Bad Gateway</h1></center>\n<hr><center>nginx</center>\n{}</body></html>\n",
                "<!-- padding so the page is long enough to need summarising -->\n".repeat(40)
            );
            (
                StatusCode::BAD_GATEWAY,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                page,
            )
                .into_response()
        }
        // Handled in `serve`.
        Fault::MalformedJson
        | Fault::CutStream
        | Fault::SlowFirstByte(_)
        | Fault::Hang
        | Fault::StallStream => {
            (StatusCode::INTERNAL_SERVER_ERROR, "unreachable fault").into_response()
        }
    }
}

/// An SSE response from ready-made frames; `Cut` sends about half of them, `Stall` sends about half
/// and then keeps the connection open without sending more.
pub(crate) fn sse_response(frames: Vec<String>, mode: Mode) -> Response {
    use futures::StreamExt;
    let keep = match mode {
        Mode::Full => frames.len(),
        Mode::Cut | Mode::Stall => (frames.len() / 2).max(1),
    };
    let items: Vec<Result<bytes::Bytes, std::convert::Infallible>> = frames
        .into_iter()
        .take(keep)
        .map(|f| Ok(bytes::Bytes::from(f)))
        .collect();
    let stream = futures::stream::iter(items);
    let body = if mode == Mode::Stall {
        axum::body::Body::from_stream(stream.chain(futures::stream::pending()))
    } else {
        axum::body::Body::from_stream(stream)
    };
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// Splits text into stream deltas: after each space, so the pieces add up to the text.
pub(crate) fn text_pieces(text: &str) -> Vec<&str> {
    if text.is_empty() {
        return vec![""];
    }
    text.split_inclusive(' ').collect()
}

/// Splits a string into up to three non-empty fragments on char boundaries.
pub(crate) fn fragments(s: &str) -> Vec<&str> {
    let cuts: Vec<usize> = [s.len() / 3, 2 * s.len() / 3]
        .into_iter()
        .map(|mut c| {
            while !s.is_char_boundary(c) {
                c += 1;
            }
            c
        })
        .collect();
    let mut out = Vec::new();
    let mut start = 0;
    for c in cuts.into_iter().chain([s.len()]) {
        if c > start {
            out.push(&s[start..c]);
            start = c;
        }
    }
    out
}

fn count_words(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}

fn count_request_words(request: &Value) -> u64 {
    fn walk(v: &Value) -> u64 {
        match v {
            Value::String(s) => count_words(s),
            Value::Array(a) => a.iter().map(walk).sum(),
            Value::Object(o) => o.values().map(walk).sum(),
            _ => 0,
        }
    }
    walk(request.get("messages").unwrap_or(&Value::Null))
        + walk(request.get("system").unwrap_or(&Value::Null))
}

/// Whether the request's last message carries a tool result.
fn last_is_tool_result(protocol: Protocol, request: &Value) -> bool {
    let Some(last) = request
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|m| m.last())
    else {
        return false;
    };
    let role = last.get("role").and_then(Value::as_str);
    match protocol {
        Protocol::OpenAi => role == Some("tool"),
        Protocol::Anthropic => {
            role == Some("user")
                && last
                    .get("content")
                    .and_then(Value::as_array)
                    .is_some_and(|blocks| {
                        blocks
                            .iter()
                            .any(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
                    })
        }
    }
}

/// The name of the first tool the request offers.
fn first_tool_name(protocol: Protocol, request: &Value) -> Option<String> {
    let first = request.get("tools")?.as_array()?.first()?;
    let name = match protocol {
        Protocol::OpenAi => first.pointer("/function/name"),
        Protocol::Anthropic => first.get("name"),
    };
    name.and_then(Value::as_str).map(str::to_owned)
}

/// The text of the last user message that has text (string content or text parts/blocks).
fn last_user_text(_protocol: Protocol, request: &Value) -> String {
    let messages = request
        .get("messages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for m in messages.iter().rev() {
        if m.get("role").and_then(Value::as_str) != Some("user") {
            continue;
        }
        match m.get("content") {
            Some(Value::String(s)) => return s.clone(),
            Some(Value::Array(parts)) => {
                let text: String = parts
                    .iter()
                    .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect();
                if !text.is_empty() {
                    return text;
                }
            }
            _ => {}
        }
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_add_up() {
        let t = "Hello wörld,  two spaces";
        assert_eq!(text_pieces(t).concat(), t);
        assert!(text_pieces(t).len() > 2);
        let a = r#"{"city":"Zürich","n":1}"#;
        assert_eq!(fragments(a).concat(), a);
        assert_eq!(fragments(a).len(), 3);
        assert_eq!(fragments("").concat(), "");
        assert_eq!(fragments("ab").concat(), "ab");
    }
}
