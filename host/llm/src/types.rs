//! Provider-neutral request, response and error types.

use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// One chat completion request, in a provider-neutral shape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatRequest {
    /// The provider's model name, e.g. `gpt-4o-mini`.
    pub model: String,
    /// The system prompt, if any.
    pub system: Option<String>,
    /// The conversation so far (never includes the system prompt).
    pub messages: Vec<Message>,
    /// Tools the model may call. Names are already provider-safe (`^[a-zA-Z0-9_-]{1,64}$`).
    pub tools: Vec<ToolDef>,
    /// How the model must use the tools.
    pub tool_choice: ToolChoice,
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// Upper bound on generated tokens.
    pub max_tokens: Option<u32>,
    /// Ask for JSON matching a schema (OpenAI `response_format`; Anthropic via a forced tool).
    pub response_format: Option<ResponseFormat>,
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// Text from the user.
    User { content: String },
    /// A turn of the model: text and/or tool calls.
    Assistant {
        content: Option<String>,
        tool_calls: Vec<ToolCallRequest>,
    },
    /// The result of one tool call, answering `call_id`.
    Tool {
        call_id: String,
        content: String,
        is_error: bool,
    },
}

/// A tool offered to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDef {
    /// Provider-safe name.
    pub name: String,
    /// What the tool does.
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: serde_json::Value,
}

/// How the model must use the offered tools.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum ToolChoice {
    /// The model decides.
    #[default]
    Auto,
    /// The model must not call tools.
    None,
    /// The model must call some tool.
    Required,
    /// The model must call this tool.
    Tool(String),
}

/// Structured output request.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseFormat {
    /// A name for the schema (`^[a-zA-Z0-9_-]+$`).
    pub name: String,
    /// The JSON Schema the answer must match.
    pub schema: serde_json::Value,
}

/// A tool call the model asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCallRequest {
    /// The provider's id of this call (echoed back in [`Message::Tool`]).
    pub id: String,
    /// The provider-safe tool name.
    pub name: String,
    /// The arguments as JSON text (as the model produced it: may be invalid JSON).
    pub arguments: String,
}

/// Why the model stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// A natural end of the answer.
    #[default]
    Stop,
    /// The model wants tool results.
    ToolCalls,
    /// `max_tokens` was reached.
    Length,
    /// The provider filtered the answer.
    ContentFilter,
    /// Anything else the provider reported.
    Other,
}

/// Token usage of one or more calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
}

impl Usage {
    /// Adds another usage to this one.
    pub fn add(&mut self, other: Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
    }

    /// Input plus output tokens.
    pub fn total(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }
}

/// The model's complete answer to one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatResponse {
    /// Text of the answer (for structured output, the JSON text).
    pub content: Option<String>,
    /// Tool calls the model asked for, in order.
    pub tool_calls: Vec<ToolCallRequest>,
    /// Tokens used by this call.
    pub usage: Usage,
    /// Why the model stopped.
    pub finish_reason: FinishReason,
    /// The model that answered, as the provider reports it.
    pub model: String,
}

/// Receives text deltas while a response streams. Bounded: a slow reader slows the provider read.
pub type DeltaSink = mpsc::Sender<String>;

/// What went wrong calling a provider. Every variant names the provider.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum LlmError {
    /// 429 (after retries).
    #[error("{provider} rate-limited the request (HTTP 429): {message}")]
    RateLimited {
        provider: String,
        retry_after: Option<Duration>,
        message: String,
    },
    /// Any other non-2xx status (after retries for 5xx/529).
    #[error("{provider} answered HTTP {status}: {message}")]
    Status {
        provider: String,
        status: u16,
        message: String,
    },
    /// Connect, first-byte, idle-stream or total timeout.
    #[error("{provider} timed out: {message}")]
    Timeout { provider: String, message: String },
    /// Could not connect or the connection broke.
    #[error("{provider} could not be reached: {message}")]
    Connection { provider: String, message: String },
    /// The response did not follow the provider's protocol (bad JSON, cut stream, …).
    #[error("{provider} sent an invalid response: {message}")]
    Protocol { provider: String, message: String },
    /// The provider is not configured (e.g. no API key).
    #[error("provider {provider} is not configured: {message}")]
    NotConfigured { provider: String, message: String },
}

impl LlmError {
    /// A stable machine-readable code, used in run errors.
    pub fn code(&self) -> &'static str {
        match self {
            LlmError::RateLimited { .. } => "llm_rate_limited",
            LlmError::Status { .. } => "llm_http_error",
            LlmError::Timeout { .. } => "llm_timeout",
            LlmError::Connection { .. } => "llm_unavailable",
            LlmError::Protocol { .. } => "llm_bad_response",
            LlmError::NotConfigured { .. } => "llm_not_configured",
        }
    }

    /// Whether a fallback provider should be tried after this error.
    pub fn should_fall_back(&self) -> bool {
        !matches!(self, LlmError::Status { status, .. } if (400..500).contains(status) && *status != 408 && *status != 429)
    }
}

/// One LLM backend (OpenAI, Anthropic, an OpenAI-compatible server…).
pub trait Provider: Send + Sync + 'static {
    /// The name workflows use for this provider (e.g. `openai`).
    fn name(&self) -> &str;

    /// Sends one request, retrying transient failures. When `deltas` is given the response is streamed
    /// and each text delta is sent to it as it arrives; the returned response is always complete.
    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
        deltas: Option<&'a DeltaSink>,
    ) -> BoxFuture<'a, Result<ChatResponse, LlmError>>;
}
