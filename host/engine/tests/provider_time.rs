//! `provider_ms` of a node record: the time an LLM node waited on its provider, apart from its tool calls.

mod support;

use std::sync::Arc;
use std::time::Duration;

use pipecat_engine::{RunContext, RunLimits, RunStatus, ToolRunner, parse};
use pipecat_fake_llm::{FakeLlm, Reply};
use serde_json::json;

const PROVIDER_DELAY: Duration = Duration::from_millis(60);
const TOOL_DELAY: Duration = Duration::from_millis(80);

#[tokio::test]
async fn llm_node_records_the_time_spent_waiting_on_its_provider_apart_from_tools() {
    let fake = FakeLlm::start().await;
    fake.push(Reply::Delayed(
        PROVIDER_DELAY,
        Box::new(Reply::tool_call("slow__wait", json!({}))),
    ));
    fake.push(Reply::Delayed(
        PROVIDER_DELAY,
        Box::new(Reply::text("done")),
    ));
    let mut tools = support::ClosureTools::default();
    tools.add("slow.wait", |_| {
        Box::pin(async {
            tokio::time::sleep(TOOL_DELAY).await;
            Ok("waited".to_string())
        })
    });
    let tools: Arc<dyn ToolRunner> = Arc::new(tools);
    let workflow = Arc::new(
        parse(&json!({
            "name": "timing",
            "nodes": [
                {"id": "ask", "type": "llm", "provider": "openai", "model": "m", "prompt": "{{ input }}",
                 "tools": ["slow.wait"], "stream": false},
                {"id": "reply", "type": "template", "template": "{{ nodes.ask.output }}"}
            ],
            "edges": [{"from": "ask", "to": "reply"}],
            "output": "reply"
        }))
        .expect("valid"),
    );
    let engine = support::engine(&fake, RunLimits::default());
    let outcome = engine
        .run(workflow, json!("go"), tools, RunContext::new())
        .await;
    assert_eq!(outcome.status, RunStatus::Success, "{:?}", outcome.error);

    let ask = outcome
        .nodes
        .iter()
        .find(|n| n.node_id == "ask")
        .expect("ask");
    let provider_ms = ask.provider_ms.expect("an llm node records provider time");
    let two_calls = 2.0 * PROVIDER_DELAY.as_secs_f64() * 1000.0;
    assert!(
        provider_ms >= two_calls,
        "two delayed provider calls take at least {two_calls} ms, recorded {provider_ms}"
    );
    let tool_ms = TOOL_DELAY.as_secs_f64() * 1000.0;
    assert!(
        ask.duration_ms - provider_ms >= tool_ms,
        "the tool's {tool_ms} ms are not provider time: node {} ms, provider {provider_ms} ms",
        ask.duration_ms
    );
    let reply = outcome
        .nodes
        .iter()
        .find(|n| n.node_id == "reply")
        .expect("reply");
    assert_eq!(reply.provider_ms, None, "a template node calls no provider");
}
