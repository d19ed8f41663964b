//! OpenAI Chat Completions, for OpenAI itself and any OpenAI-compatible server (Ollama, vLLM,
//! llama.cpp server, Groq, …).

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tracing::Instrument;

use crate::http::{HttpClient, HttpPolicy};
use crate::types::{
    ChatRequest, ChatResponse, DeltaSink, FinishReason, LlmError, Message, Provider,
    ToolCallRequest, ToolChoice, Usage,
};

/// Default base URL of OpenAI.
pub const OPENAI_DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// A provider speaking the OpenAI Chat Completions protocol.
#[derive(Debug, Clone)]
pub struct OpenAiProvider {
    name: String,
    base_url: String,
    api_key: Option<String>,
    /// When set, a missing key fails calls with `NotConfigured` naming this variable.
    required_key_env: Option<String>,
    http: HttpClient,
}

impl OpenAiProvider {
    /// A provider named `name` at `base_url` (e.g. `http://localhost:11434/v1`); the key is optional
    /// (sent as a bearer token when present).
    pub fn new(
        name: impl Into<String>,
        base_url: impl Into<String>,
        api_key: Option<String>,
    ) -> Self {
        let name = name.into();
        let http = HttpClient::new(&name, HttpPolicy::default());
        OpenAiProvider {
            name,
            base_url: base_url.into(),
            api_key,
            required_key_env: None,
            http,
        }
    }

    /// OpenAI from `OPENAI_API_KEY` and `OPENAI_BASE_URL`; the key is required unless the base URL
    /// is a local one.
    pub fn from_env() -> Self {
        let base_url =
            env_nonempty("OPENAI_BASE_URL").unwrap_or_else(|| OPENAI_DEFAULT_BASE_URL.to_owned());
        OpenAiProvider::new("openai", base_url, env_nonempty("OPENAI_API_KEY"))
            .require_key("OPENAI_API_KEY")
    }

    /// Makes a missing key fail calls with `NotConfigured` (naming `env_var`), unless the base URL is local.
    pub fn require_key(mut self, env_var: &str) -> Self {
        self.required_key_env = Some(env_var.to_owned());
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

    fn endpoint(&self) -> String {
        format!("{}/chat/completions", self.base_url.trim_end_matches('/'))
    }

    fn check_key(&self) -> Result<(), LlmError> {
        match (&self.api_key, &self.required_key_env) {
            (None, Some(env)) if !crate::is_local_url(&self.base_url) => {
                Err(LlmError::NotConfigured {
                    provider: self.name.clone(),
                    message: format!("set {env} to call {}", self.base_url),
                })
            }
            _ => Ok(()),
        }
    }

    async fn call(
        &self,
        request: &ChatRequest,
        deltas: Option<&DeltaSink>,
    ) -> Result<ChatResponse, LlmError> {
        self.check_key()?;
        // OpenAI's own API wants `max_completion_tokens` (newer models reject `max_tokens`);
        // compatible servers know `max_tokens`.
        let new_tokens_field = self.base_url.contains("api.openai.com");
        let body = request_body(request, deltas.is_some(), new_tokens_field);
        let url = self.endpoint();
        let response = self
            .http
            .send(|| {
                let builder = self.http.client().post(&url).json(&body);
                match &self.api_key {
                    Some(key) => builder.bearer_auth(key),
                    None => builder,
                }
            })
            .await?;
        match deltas {
            None => {
                let body = self.http.read_body(response).await?;
                parse_completion(&body).map_err(|m| self.http.protocol_error(m))
            }
            Some(sink) => self.read_stream(response, sink).await,
        }
    }

    async fn read_stream(
        &self,
        response: reqwest::Response,
        sink: &DeltaSink,
    ) -> Result<ChatResponse, LlmError> {
        let mut events = self.http.events(response);
        let mut acc = StreamAcc::default();
        while let Some(event) = events.next().await? {
            let data = event.data.trim();
            if data == "[DONE]" {
                return Ok(acc.finish());
            }
            if data.is_empty() {
                continue;
            }
            let chunk: Chunk = serde_json::from_str(data)
                .map_err(|e| self.http.protocol_error(format!("bad stream chunk: {e}")))?;
            if let Some(error) = chunk.error {
                let message = crate::http::error_message(error.to_string().as_bytes(), None);
                return Err(self
                    .http
                    .protocol_error(format!("error in stream: {message}")));
            }
            if let Some(text) = acc.apply(chunk) {
                // A dropped receiver only means nobody watches the deltas.
                let _ = sink.send(text).await;
            }
        }
        Err(self.http.protocol_error("stream ended before [DONE]"))
    }
}

impl Provider for OpenAiProvider {
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

pub(crate) fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The JSON body of a Chat Completions request.
pub(crate) fn request_body(request: &ChatRequest, stream: bool, new_tokens_field: bool) -> Value {
    let mut messages = Vec::new();
    if let Some(system) = &request.system {
        messages.push(json!({"role": "system", "content": system}));
    }
    for message in &request.messages {
        messages.push(match message {
            Message::User { content } => json!({"role": "user", "content": content}),
            Message::Assistant { content, tool_calls } => {
                let mut m = json!({"role": "assistant", "content": content});
                if !tool_calls.is_empty() {
                    m["tool_calls"] = tool_calls
                        .iter()
                        .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
                        .collect();
                }
                m
            }
            Message::Tool { call_id, content, is_error } => {
                let content = if *is_error { format!("Error: {content}") } else { content.clone() };
                json!({"role": "tool", "tool_call_id": call_id, "content": content})
            }
        });
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(request.model));
    body.insert("messages".into(), Value::Array(messages));
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|t| json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}))
            .collect();
        body.insert("tools".into(), Value::Array(tools));
        let choice = match &request.tool_choice {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Tool(name) => json!({"type": "function", "function": {"name": name}}),
        };
        body.insert("tool_choice".into(), choice);
    }
    if let Some(t) = request.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(n) = request.max_tokens {
        let field = if new_tokens_field {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        body.insert(field.into(), json!(n));
    }
    if let Some(format) = &request.response_format {
        body.insert(
            "response_format".into(),
            json!({"type": "json_schema", "json_schema": {"name": format.name, "schema": format.schema, "strict": true}}),
        );
    }
    if stream {
        body.insert("stream".into(), json!(true));
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Value::Object(body)
}

fn finish_reason(reason: Option<&str>) -> FinishReason {
    match reason {
        None | Some("stop") => FinishReason::Stop,
        Some("tool_calls" | "function_call") => FinishReason::ToolCalls,
        Some("length") => FinishReason::Length,
        Some("content_filter") => FinishReason::ContentFilter,
        Some(_) => FinishReason::Other,
    }
}

#[derive(Debug, Default, Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

impl WireUsage {
    fn usage(&self) -> Usage {
        Usage {
            input_tokens: self.prompt_tokens.unwrap_or(0),
            output_tokens: self.completion_tokens.unwrap_or(0),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Completion {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Option<Vec<Choice>>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    #[serde(default)]
    message: Option<WireMessage>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<WireToolCall>>,
}

#[derive(Debug, Deserialize)]
struct WireToolCall {
    #[serde(default)]
    id: Option<String>,
    function: WireFunction,
}

#[derive(Debug, Deserialize)]
struct WireFunction {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

/// Parses a non-streamed completion body.
fn parse_completion(body: &[u8]) -> Result<ChatResponse, String> {
    let completion: Completion =
        serde_json::from_slice(body).map_err(|e| format!("bad JSON body: {e}"))?;
    let choice = completion
        .choices
        .and_then(|c| c.into_iter().next())
        .ok_or("the answer has no choices")?;
    let message = choice.message.ok_or("the answer's choice has no message")?;
    let tool_calls = message
        .tool_calls
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, c)| ToolCallRequest {
            id: c.id.unwrap_or_else(|| format!("call_{i}")),
            name: c.function.name.unwrap_or_default(),
            arguments: c.function.arguments.unwrap_or_default(),
        })
        .collect();
    let content = message.content.or(message.refusal);
    Ok(ChatResponse {
        content,
        tool_calls,
        usage: completion.usage.map(|u| u.usage()).unwrap_or_default(),
        finish_reason: finish_reason(choice.finish_reason.as_deref()),
        model: completion.model.unwrap_or_default(),
    })
}

#[derive(Debug, Deserialize)]
struct Chunk {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Option<Vec<ChunkChoice>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<DeltaToolCall>>,
}

#[derive(Debug, Deserialize)]
struct DeltaToolCall {
    #[serde(default)]
    index: Option<usize>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<WireFunction>,
}

/// Accumulates a streamed answer; tool-call fragments are merged by index.
#[derive(Debug, Default)]
struct StreamAcc {
    model: String,
    content: Option<String>,
    calls: BTreeMap<usize, ToolCallRequest>,
    finish: Option<String>,
    usage: Usage,
}

impl StreamAcc {
    /// Applies one chunk; returns its text delta, if any.
    fn apply(&mut self, chunk: Chunk) -> Option<String> {
        if let Some(model) = chunk.model.filter(|m| !m.is_empty()) {
            self.model = model;
        }
        if let Some(usage) = chunk.usage {
            self.usage = usage.usage();
        }
        let mut text = None;
        for choice in chunk.choices.unwrap_or_default() {
            if let Some(reason) = choice.finish_reason {
                self.finish = Some(reason);
            }
            let Some(delta) = choice.delta else { continue };
            if let Some(t) = delta.content.filter(|t| !t.is_empty()) {
                self.content.get_or_insert_with(String::new).push_str(&t);
                text.get_or_insert_with(String::new).push_str(&t);
            }
            for (position, call) in delta.tool_calls.unwrap_or_default().into_iter().enumerate() {
                let index = call.index.unwrap_or(position);
                let entry = self.calls.entry(index).or_insert_with(|| ToolCallRequest {
                    id: String::new(),
                    name: String::new(),
                    arguments: String::new(),
                });
                if let Some(id) = call.id.filter(|id| !id.is_empty()) {
                    entry.id = id;
                }
                if let Some(function) = call.function {
                    if let Some(name) = function.name.filter(|n| !n.is_empty())
                        && entry.name.is_empty()
                    {
                        entry.name = name;
                    }
                    if let Some(args) = function.arguments {
                        entry.arguments.push_str(&args);
                    }
                }
            }
        }
        text
    }

    fn finish(self) -> ChatResponse {
        let tool_calls = self
            .calls
            .into_iter()
            .map(|(index, mut call)| {
                if call.id.is_empty() {
                    call.id = format!("call_{index}");
                }
                call
            })
            .collect();
        ChatResponse {
            content: self.content,
            tool_calls,
            usage: self.usage,
            finish_reason: finish_reason(self.finish.as_deref()),
            model: self.model,
        }
    }
}
