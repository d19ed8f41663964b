//! Anthropic Messages API.
//!
//! Structured output has no native switch here: the schema becomes a tool named after the
//! [`ResponseFormat`](crate::ResponseFormat), the model is forced to call it, and the tool's input is
//! returned as the JSON content (streamed as text deltas like any other answer).

mod response;

use futures::future::BoxFuture;
use serde_json::{Map, Value, json};
use tracing::Instrument;

use crate::http::{HttpClient, HttpPolicy};
use crate::openai::env_nonempty;
use crate::types::{ChatRequest, ChatResponse, DeltaSink, LlmError, Message, Provider, ToolChoice};
use response::{Acc, Event, Step, WireMessage};

/// Default base URL of Anthropic.
pub const ANTHROPIC_DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// The API version header sent with every call.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
/// `max_tokens` when the request sets none (Anthropic requires one).
pub const ANTHROPIC_DEFAULT_MAX_TOKENS: u32 = 4096;

/// A provider speaking the Anthropic Messages protocol.
#[derive(Debug, Clone)]
pub struct AnthropicProvider {
    name: String,
    base_url: String,
    api_key: Option<String>,
    /// Named in the `NotConfigured` error when the key is missing.
    key_env: String,
    http: HttpClient,
}

impl AnthropicProvider {
    /// A provider named `name` at `base_url` (the client appends `/v1/messages`). Without a key,
    /// calls to a non-local URL fail with `NotConfigured`.
    pub fn new(
        name: impl Into<String>,
        base_url: impl Into<String>,
        api_key: Option<String>,
    ) -> Self {
        let name = name.into();
        let http = HttpClient::new(&name, HttpPolicy::default());
        AnthropicProvider {
            name,
            base_url: base_url.into(),
            api_key,
            key_env: "ANTHROPIC_API_KEY".to_owned(),
            http,
        }
    }

    /// Anthropic from `ANTHROPIC_API_KEY` and `ANTHROPIC_BASE_URL`.
    pub fn from_env() -> Self {
        let base_url = env_nonempty("ANTHROPIC_BASE_URL")
            .unwrap_or_else(|| ANTHROPIC_DEFAULT_BASE_URL.to_owned());
        AnthropicProvider::new("anthropic", base_url, env_nonempty("ANTHROPIC_API_KEY"))
    }

    /// Names the variable the key comes from (for the `NotConfigured` message).
    pub fn with_key_env(mut self, env_var: &str) -> Self {
        self.key_env = env_var.to_owned();
        self
    }

    /// Replaces the HTTP policy (timeouts, retries, limits).
    pub fn with_policy(mut self, policy: HttpPolicy) -> Self {
        self.http = HttpClient::new(&self.name, policy);
        self
    }

    /// The base URL calls go to.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    async fn call(
        &self,
        request: &ChatRequest,
        deltas: Option<&DeltaSink>,
    ) -> Result<ChatResponse, LlmError> {
        if self.api_key.is_none() && !crate::is_local_url(&self.base_url) {
            return Err(LlmError::NotConfigured {
                provider: self.name.clone(),
                message: format!("set {} to call {}", self.key_env, self.base_url),
            });
        }
        let body = request_body(request, deltas.is_some());
        let url = format!("{}/v1/messages", self.base_url.trim_end_matches('/'));
        let response = self
            .http
            .send(|| {
                let builder = self
                    .http
                    .client()
                    .post(&url)
                    .header("anthropic-version", ANTHROPIC_VERSION)
                    .json(&body);
                match &self.api_key {
                    Some(key) => builder.header("x-api-key", key),
                    None => builder,
                }
            })
            .await?;
        let structured = request.response_format.as_ref().map(|f| f.name.as_str());
        let mut acc = Acc::new(structured);
        match deltas {
            None => {
                let body = self.http.read_body(response).await?;
                let message: WireMessage = serde_json::from_slice(&body)
                    .map_err(|e| self.http.protocol_error(format!("bad JSON body: {e}")))?;
                acc.whole(message);
                Ok(acc.finish())
            }
            Some(sink) => {
                let mut events = self.http.events(response);
                while let Some(event) = events.next().await? {
                    if event.data.trim().is_empty() {
                        continue;
                    }
                    let event: Event = serde_json::from_str(&event.data)
                        .map_err(|e| self.http.protocol_error(format!("bad stream event: {e}")))?;
                    match acc.event(event) {
                        Step::Continue(Some(text)) => {
                            let _ = sink.send(text).await;
                        }
                        Step::Continue(None) => {}
                        Step::Done => return Ok(acc.finish()),
                        Step::Failed(kind, message) => {
                            return Err(self.stream_error(&kind, message));
                        }
                    }
                }
                Err(self.http.protocol_error("stream ended before message_stop"))
            }
        }
    }

    fn stream_error(&self, kind: &str, message: String) -> LlmError {
        let provider = self.name.clone();
        let message = format!("{kind}: {message}");
        match kind {
            "overloaded_error" => LlmError::Status {
                provider,
                status: 529,
                message,
            },
            "rate_limit_error" => LlmError::RateLimited {
                provider,
                retry_after: None,
                message,
            },
            "api_error" => LlmError::Status {
                provider,
                status: 500,
                message,
            },
            _ => LlmError::Protocol {
                provider,
                message: format!("error in stream: {message}"),
            },
        }
    }
}

impl Provider for AnthropicProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
        deltas: Option<&'a DeltaSink>,
    ) -> BoxFuture<'a, Result<ChatResponse, LlmError>> {
        let span = tracing::info_span!("llm_chat", provider = %self.name, model = %request.model, stream = deltas.is_some());
        Box::pin(
            self.http
                .within_total(self.call(request, deltas))
                .instrument(span),
        )
    }
}

/// The JSON body of a Messages request.
pub(crate) fn request_body(request: &ChatRequest, stream: bool) -> Value {
    let mut turns: Vec<(&str, Vec<Value>)> = Vec::new();
    for message in &request.messages {
        let (role, blocks) = match message {
            Message::User { content } => ("user", vec![json!({"type": "text", "text": content})]),
            Message::Assistant {
                content,
                tool_calls,
            } => {
                let mut blocks = Vec::new();
                if let Some(text) = content.as_deref().filter(|t| !t.is_empty()) {
                    blocks.push(json!({"type": "text", "text": text}));
                }
                for call in tool_calls {
                    let input = match serde_json::from_str::<Value>(&call.arguments) {
                        Ok(v @ Value::Object(_)) => v,
                        _ => json!({}),
                    };
                    blocks.push(json!({"type": "tool_use", "id": call.id, "name": call.name, "input": input}));
                }
                ("assistant", blocks)
            }
            Message::Tool {
                call_id,
                content,
                is_error,
            } => {
                let mut block =
                    json!({"type": "tool_result", "tool_use_id": call_id, "content": content});
                if *is_error {
                    block["is_error"] = json!(true);
                }
                ("user", vec![block])
            }
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            // Consecutive messages of one role (e.g. several tool results) share one turn.
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    let messages: Vec<Value> = turns
        .into_iter()
        .map(|(role, blocks)| match blocks.as_slice() {
            [only] if only["type"] == "text" => json!({"role": role, "content": only["text"]}),
            _ => json!({"role": role, "content": blocks}),
        })
        .collect();

    let mut body = Map::new();
    body.insert("model".into(), json!(request.model));
    body.insert(
        "max_tokens".into(),
        json!(request.max_tokens.unwrap_or(ANTHROPIC_DEFAULT_MAX_TOKENS)),
    );
    if let Some(system) = &request.system {
        body.insert("system".into(), json!(system));
    }
    body.insert("messages".into(), Value::Array(messages));
    let mut tools: Vec<Value> = request
        .tools
        .iter()
        .map(
            |t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}),
        )
        .collect();
    let mut choice = match &request.tool_choice {
        ToolChoice::Auto => json!({"type": "auto"}),
        ToolChoice::None => json!({"type": "none"}),
        ToolChoice::Required => json!({"type": "any"}),
        ToolChoice::Tool(name) => json!({"type": "tool", "name": name}),
    };
    if let Some(format) = &request.response_format {
        tools.push(json!({
            "name": format.name,
            "description": "Give the final answer as JSON matching this schema.",
            "input_schema": format.schema,
        }));
        // Alone (or with tools switched off) the answer tool is forced; next to real tools the
        // model must call some tool, so it can still use them before answering.
        choice = if request.tools.is_empty() || request.tool_choice == ToolChoice::None {
            json!({"type": "tool", "name": format.name})
        } else {
            json!({"type": "any"})
        };
    }
    if !tools.is_empty() {
        body.insert("tools".into(), Value::Array(tools));
        body.insert("tool_choice".into(), choice);
    }
    if let Some(t) = request.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if stream {
        body.insert("stream".into(), json!(true));
    }
    Value::Object(body)
}
