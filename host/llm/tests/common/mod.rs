//! Helpers shared by the provider tests.
#![allow(dead_code)]

use std::time::Duration;

use pipecat_llm::{ChatRequest, ChatResponse, HttpPolicy, LlmError, Message, Provider};
use tokio::sync::mpsc;

/// Generous timeouts (slow shared machines) and near-zero backoff.
pub fn policy() -> HttpPolicy {
    HttpPolicy {
        connect_timeout: Duration::from_secs(10),
        first_byte_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(30),
        total_timeout: Duration::from_secs(120),
        max_attempts: 3,
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        max_retry_wait: Duration::from_secs(10),
        max_body_bytes: 1024 * 1024,
    }
}

/// A user question with a system prompt.
pub fn ask(model: &str, question: &str) -> ChatRequest {
    ChatRequest {
        model: model.to_owned(),
        system: Some("You are terse.".to_owned()),
        messages: vec![Message::User {
            content: question.to_owned(),
        }],
        ..ChatRequest::default()
    }
}

/// Streams a request, returning the response and the deltas received.
pub async fn stream(
    provider: &dyn Provider,
    request: &ChatRequest,
) -> (Result<ChatResponse, LlmError>, Vec<String>) {
    let (tx, mut rx) = mpsc::channel(1024);
    let result = provider.chat(request, Some(&tx)).await;
    drop(tx);
    let mut deltas = Vec::new();
    while let Some(d) = rx.recv().await {
        deltas.push(d);
    }
    (result, deltas)
}
