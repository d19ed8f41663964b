//! Event stream order and `seq`, token deltas adding up to the output, and cancellation.

mod support;

use std::sync::Arc;

use pipecat_engine::{
    Event, EventKind, RunContext, RunLimits, RunStatus, ToolFailure, ToolRunner, parse,
};
use pipecat_fake_llm::{FakeLlm, Reply};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

fn weather_workflow() -> Arc<pipecat_engine::Workflow> {
    let doc = json!({
        "name": "weather",
        "nodes": [
            {"id": "llm_node_1", "type": "llm", "provider": "openai", "model": "gpt-4o-mini", "prompt": "{{ input }}",
             "tools": ["weather.get_weather"]},
            {"id": "reply", "type": "template", "template": "{{ nodes.llm_node_1.output }}"}
        ],
        "edges": [{"from": "llm_node_1", "to": "reply"}],
        "output": "llm_node_1"
    });
    Arc::new(parse(&doc).expect("valid"))
}

#[tokio::test]
async fn events_are_ordered_with_consecutive_seq_and_tokens_add_up() {
    let fake = FakeLlm::start().await;
    fake.push(Reply::tool_call(
        "weather__get_weather",
        json!({"location": "Tokyo"}),
    ));
    fake.push(Reply::text("It is sunny in Tokyo today."));
    let engine = support::engine(&fake, RunLimits::default());
    let (tx, mut rx) = mpsc::channel::<Event>(4);
    let ctx = RunContext::new().with_events(tx);
    let run_id = ctx.run_id;
    let tools: Arc<dyn ToolRunner> = Arc::new(support::ClosureTools::standard());
    let collect = async {
        let mut events = Vec::new();
        while let Some(event) = rx.recv().await {
            events.push(event);
        }
        events
    };
    let (outcome, events) = tokio::join!(
        engine.run(weather_workflow(), json!("Weather in Tokyo?"), tools, ctx),
        collect
    );
    assert_eq!(outcome.status, RunStatus::Success, "{:?}", outcome.error);

    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=events.len() as u64).collect::<Vec<_>>());
    assert!(events.iter().all(|e| e.run_id == run_id));
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| match &e.kind {
            EventKind::RunStarted {} => "run_started",
            EventKind::NodeStarted { .. } => "node_started",
            EventKind::Token { .. } => "token",
            EventKind::ToolCall { .. } => "tool_call",
            EventKind::ToolResult { .. } => "tool_result",
            EventKind::NodeFinished { .. } => "node_finished",
            EventKind::RunFinished(_) => "run_finished",
        })
        .filter(|k| *k != "token")
        .collect();
    assert_eq!(
        kinds,
        [
            "run_started",
            "node_started",
            "tool_call",
            "tool_result",
            "node_finished",
            "node_started",
            "node_finished",
            "run_finished"
        ]
    );
    let text: String = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Token { node_id, text } if node_id == "llm_node_1" => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(json!(text), outcome.output.clone().expect("output"));
    let tokens = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Token { .. }))
        .count();
    assert!(tokens > 1, "the answer streamed as several deltas");

    // Flat serialization; run_finished carries the REST body.
    let first = serde_json::to_value(&events[1]).expect("serialize");
    assert_eq!(
        first,
        json!({"seq": 2, "run_id": run_id.to_string(), "type": "node_started", "node_id": "llm_node_1"})
    );
    let last = serde_json::to_value(events.last().expect("events")).expect("serialize");
    let body = outcome.response_body();
    for key in ["status", "output", "tool_calls"] {
        assert_eq!(last[key], body[key], "{key}");
    }
    assert_eq!(last["type"], "run_finished");
    // Events deserialize back.
    let back: Event = serde_json::from_value(last).expect("deserialize");
    assert_eq!(&back, events.last().expect("events"));
}

#[tokio::test]
async fn without_a_listener_llm_calls_do_not_stream() {
    let fake = FakeLlm::start().await;
    fake.push(Reply::text("plain"));
    let engine = support::engine(&fake, RunLimits::default());
    let doc = json!({"name": "x", "nodes": [{"id": "a", "type": "llm", "provider": "openai", "model": "m", "prompt": "hi"}], "output": "a"});
    let tools: Arc<dyn ToolRunner> = Arc::new(support::ClosureTools::standard());
    let outcome = engine
        .run(
            Arc::new(parse(&doc).expect("valid")),
            json!("hi"),
            tools,
            RunContext::new(),
        )
        .await;
    assert_eq!(outcome.output, Some(json!("plain")));
    let requests = fake.requests();
    assert_ne!(requests[0].get("stream"), Some(&json!(true)));
}

/// A tool that reports when it starts and when its future is dropped, and never finishes.
struct Stuck {
    started: std::sync::Mutex<Option<oneshot::Sender<()>>>,
    dropped: std::sync::Mutex<Option<oneshot::Sender<()>>>,
}

struct OnDrop(Option<oneshot::Sender<()>>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

impl ToolRunner for Stuck {
    fn call<'a>(
        &'a self,
        _: &'a str,
        _: &'a serde_json::Value,
    ) -> futures::future::BoxFuture<'a, Result<String, ToolFailure>> {
        let started = self.started.lock().expect("lock").take();
        let guard = OnDrop(self.dropped.lock().expect("lock").take());
        Box::pin(async move {
            let _guard = guard;
            if let Some(tx) = started {
                let _ = tx.send(());
            }
            futures::future::pending::<()>().await;
            Ok(String::new())
        })
    }

    fn spec(&self, reference: &str) -> Option<pipecat_engine::ToolSpec> {
        let (plugin, name) = reference.split_once('.')?;
        Some(pipecat_engine::ToolSpec {
            plugin: plugin.into(),
            name: name.into(),
            description: String::new(),
            parameters: json!({"type": "object"}),
        })
    }
}

fn stuck() -> (Arc<Stuck>, oneshot::Receiver<()>, oneshot::Receiver<()>) {
    let (started_tx, started_rx) = oneshot::channel();
    let (dropped_tx, dropped_rx) = oneshot::channel();
    (
        Arc::new(Stuck {
            started: Some(started_tx).into(),
            dropped: Some(dropped_tx).into(),
        }),
        started_rx,
        dropped_rx,
    )
}

fn stuck_workflow() -> Arc<pipecat_engine::Workflow> {
    let doc = json!({"name": "stuck", "nodes": [{"id": "wait", "type": "tool", "tool": "slow.wait"}], "output": "wait"});
    Arc::new(parse(&doc).expect("valid"))
}

#[tokio::test]
async fn dropping_the_run_future_drops_the_tool_future() {
    let fake = FakeLlm::start().await;
    let engine = Arc::new(support::engine(&fake, RunLimits::default()));
    let (tools, started, dropped) = stuck();
    let task = tokio::spawn({
        let engine = engine.clone();
        async move {
            engine
                .run(stuck_workflow(), json!("x"), tools, RunContext::new())
                .await
        }
    });
    started.await.expect("the tool started");
    task.abort();
    dropped.await.expect("the tool future was dropped");
    assert!(task.await.expect_err("aborted").is_cancelled());
}

#[tokio::test]
async fn cancellation_token_ends_the_run_as_cancelled() {
    let fake = FakeLlm::start().await;
    let engine = support::engine(&fake, RunLimits::default());
    let (tools, started, dropped) = stuck();
    let cancel = CancellationToken::new();
    let ctx = RunContext::new().with_cancel(cancel.clone());
    let run = engine.run(stuck_workflow(), json!("x"), tools, ctx);
    let trigger = async {
        started.await.expect("the tool started");
        cancel.cancel();
    };
    let (outcome, ()) = tokio::join!(run, trigger);
    assert_eq!(outcome.status, RunStatus::Cancelled);
    assert_eq!(outcome.output, None);
    assert_eq!(outcome.nodes.len(), 1);
    assert_eq!(
        outcome.nodes[0].error.as_ref().map(|e| e.code.as_str()),
        Some("cancelled")
    );
    dropped.await.expect("the tool future was dropped");
}

#[tokio::test]
async fn run_timeout_is_reported() {
    let fake = FakeLlm::start().await;
    // The tool never finishes, so the run ends only through its timeout (no timing is asserted).
    let limits = RunLimits {
        run_timeout: std::time::Duration::from_millis(50),
        ..RunLimits::default()
    };
    let engine = support::engine(&fake, limits);
    let (tools, _started, _dropped) = stuck();
    let outcome = engine
        .run(stuck_workflow(), json!("x"), tools, RunContext::new())
        .await;
    assert_eq!(outcome.status, RunStatus::Error);
    let error = outcome.error.expect("error");
    assert_eq!(error.code, "run_timeout");
    assert_eq!(error.node_id.as_deref(), Some("wait"));
}
