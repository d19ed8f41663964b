//! Calling a model: fallbacks in order, token streaming to events, usage accounting.

use pipecat_llm::{ChatRequest, ChatResponse, LlmError};
use tokio::sync::mpsc;

use super::{NodeFailure, NodeMeta};
use crate::document::ModelRef;
use crate::events::EventKind;
use crate::run::{Shared, charge_tokens};

/// The provider/model pairs of a node, in order, and which one answered last.
pub(crate) struct Candidates<'a> {
    list: Vec<(&'a str, &'a str)>,
    current: usize,
}

impl<'a> Candidates<'a> {
    pub(crate) fn new(
        provider: &'a str,
        model: &'a str,
        fallbacks: &'a [ModelRef],
    ) -> Candidates<'a> {
        let mut list = vec![(provider, model)];
        list.extend(
            fallbacks
                .iter()
                .map(|f| (f.provider.as_str(), f.model.as_str())),
        );
        Candidates { list, current: 0 }
    }
}

/// Sends `request` to the current candidate, falling back in order on errors that allow it. Later calls of
/// the same node start at the candidate that answered. Streams text deltas as `token` events when `stream`.
pub(crate) async fn chat(
    shared: &Shared<'_>,
    node_id: &str,
    candidates: &mut Candidates<'_>,
    request: &mut ChatRequest,
    stream: bool,
    meta: &mut NodeMeta,
) -> Result<ChatResponse, NodeFailure> {
    let stream = stream && shared.emitter.listening();
    let mut last: Option<NodeFailure> = None;
    while candidates.current < candidates.list.len() {
        let (name, model) = candidates.list[candidates.current];
        let has_next = candidates.current + 1 < candidates.list.len();
        let Some(provider) = shared.engine.providers.provider(name) else {
            last = Some(NodeFailure::new(
                "llm_not_configured",
                format!("provider `{name}` is not configured"),
            ));
            candidates.current += 1;
            continue;
        };
        request.model = model.to_string();
        let started = std::time::Instant::now();
        let result = if stream {
            streamed(shared, node_id, provider.as_ref(), request).await
        } else {
            provider.chat(request, None).await
        };
        meta.provider_ms += started.elapsed().as_secs_f64() * 1000.0;
        match result {
            Ok(response) => {
                meta.provider = Some(name.to_string());
                meta.model = Some(model.to_string());
                meta.usage.add(response.usage);
                charge_tokens(shared, response.usage)?;
                return Ok(response);
            }
            Err(e) if has_next && e.should_fall_back() => {
                tracing::warn!(node_id, provider = name, model, error = %e, "falling back to the next model");
                last = Some(failure(&e));
                candidates.current += 1;
            }
            Err(e) => return Err(failure(&e)),
        }
    }
    Err(last.unwrap_or_else(|| NodeFailure::new("llm_not_configured", "no provider to call")))
}

fn failure(e: &LlmError) -> NodeFailure {
    NodeFailure::new(e.code(), e.to_string())
}

async fn streamed(
    shared: &Shared<'_>,
    node_id: &str,
    provider: &dyn pipecat_llm::Provider,
    request: &ChatRequest,
) -> Result<ChatResponse, LlmError> {
    let (tx, mut rx) = mpsc::channel::<String>(64);
    let call = async move {
        let result = provider.chat(request, Some(&tx)).await;
        drop(tx);
        result
    };
    let forward = async {
        while let Some(text) = rx.recv().await {
            shared
                .emitter
                .emit(EventKind::Token {
                    node_id: node_id.to_string(),
                    text,
                })
                .await;
        }
    };
    let (result, ()) = futures::join!(call, forward);
    result
}
