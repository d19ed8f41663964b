//! Helpers of the streaming, WebSocket and run-control tests: an SSE reader over a real streaming HTTP
//! response, the fake-LLM provider config, workflows, and waiting on a condition.
#![allow(dead_code)]

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde_json::{Value, json};

/// One Server-Sent Event.
#[derive(Debug, Clone)]
pub struct SseMessage {
    /// `event:`.
    pub event: String,
    /// `id:`.
    pub id: Option<String>,
    /// `data:` as JSON.
    pub data: Value,
}

/// Reads SSE messages from a streaming response.
pub struct SseReader {
    body: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    buf: String,
}

impl SseReader {
    /// Reads `response`'s body as SSE.
    pub fn new(response: reqwest::Response) -> SseReader {
        SseReader {
            body: Box::pin(response.bytes_stream()),
            buf: String::new(),
        }
    }

    /// The next message, `None` at the end of the stream.
    pub async fn next(&mut self) -> Option<SseMessage> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut msg = SseMessage {
                    event: "message".into(),
                    id: None,
                    data: Value::Null,
                };
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        msg.event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        msg.id = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a comment
                }
                msg.data = serde_json::from_str(&data).expect("SSE data is JSON");
                return Some(msg);
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.buf.push_str(&String::from_utf8_lossy(&chunk)),
                Some(Err(e)) => panic!("SSE body failed: {e}"),
                None => return None,
            }
        }
    }

    /// Every message until the stream ends (pings dropped).
    pub async fn rest(&mut self) -> Vec<SseMessage> {
        let mut out = Vec::new();
        while let Some(m) = self.next().await {
            if m.event != "ping" {
                out.push(m);
            }
        }
        out
    }

    /// Messages (pings dropped) until one satisfies `stop` (included).
    pub async fn until(&mut self, stop: impl Fn(&SseMessage) -> bool) -> Vec<SseMessage> {
        let mut out = Vec::new();
        while let Some(m) = self.next().await {
            if m.event == "ping" {
                continue;
            }
            let done = stop(&m);
            out.push(m);
            if done {
                break;
            }
        }
        out
    }
}

/// `[[providers]]` for the fake LLM (as `openai`), plus more TOML.
pub fn llm_config(llm: &pipecat_fake_llm::FakeLlm, more: &str) -> String {
    format!(
        "[[providers]]\nname = \"openai\"\nkind = \"openai\"\nbase_url = \"{}\"\n\n{more}",
        llm.openai_base_url()
    )
}

/// One LLM node answering `{{ input }}`.
pub fn llm_workflow() -> Value {
    json!({
        "name": "chat",
        "nodes": [{"id": "chat", "type": "llm", "provider": "openai", "model": "m", "prompt": "{{ input }}"}],
        "edges": [],
        "output": "chat"
    })
}

/// Two LLM nodes in a row (`first`, then `second`).
pub fn two_llm_workflow() -> Value {
    json!({
        "name": "two-step",
        "nodes": [
            {"id": "first", "type": "llm", "provider": "openai", "model": "m", "prompt": "{{ input }}"},
            {"id": "second", "type": "llm", "provider": "openai", "model": "m", "prompt": "{{ nodes.first.output }}"}
        ],
        "edges": [{"from": "first", "to": "second"}],
        "output": "second"
    })
}

/// Polls `check` every 10 ms until it returns `Some`, for at most `limit`.
pub async fn wait_for<T, F, Fut>(limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The keys of a JSON object, sorted.
pub fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    k.sort();
    k
}

/// Waits until the fake LLM has received `n` requests.
pub async fn wait_requests(llm: &pipecat_fake_llm::FakeLlm, n: usize) {
    wait_for(Duration::from_secs(10), move || async move {
        (llm.request_count() >= n).then_some(())
    })
    .await;
}
