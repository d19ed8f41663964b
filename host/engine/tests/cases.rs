//! Cases as data: every folder in `tests/cases/` holds `workflow.json`, `input.json`, `script.json` (the
//! fake provider's replies, in order) and `expected.json`. One test runs them all through the real
//! OpenAI/Anthropic clients against the fake LLM server, with closure tools.
//!
//! `expected.json`: `status`; optional `output`; `tool_calls` (each `node_id`, `tool`, `input`, and `result`
//! or `error_code`); `error` (`code`, `node_id`); `nodes` (`id -> status`); `providers` (`id -> provider`);
//! `requests` (number of provider requests); `request_contains` (`[index, substring]` pairs checked against
//! the JSON text of that provider request).

mod support;

use std::path::Path;
use std::sync::Arc;

use pipecat_engine::{RunContext, RunLimits, ToolRunner};
use pipecat_fake_llm::FakeLlm;
use serde_json::Value;

fn read(dir: &Path, file: &str) -> Option<Value> {
    let text = std::fs::read_to_string(dir.join(file)).ok()?;
    Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}/{file}: {e}", dir.display())))
}

async fn run_case(dir: &Path) -> Result<(), String> {
    let doc = read(dir, "workflow.json").ok_or("no workflow.json")?;
    let input = read(dir, "input.json").unwrap_or(Value::String(String::new()));
    let script = read(dir, "script.json").unwrap_or(Value::Array(vec![]));
    let expected = read(dir, "expected.json").ok_or("no expected.json")?;

    let tools = support::ClosureTools::standard();
    let env = support::TestEnv(support::ClosureTools::standard());
    let workflow = pipecat_engine::check(&doc, &env, &Default::default())
        .map_err(|p| format!("invalid workflow: {p:?}"))?;

    let fake = FakeLlm::start().await;
    for step in script.as_array().ok_or("script.json must be an array")? {
        fake.push(support::reply(step));
    }
    let engine = support::engine(&fake, RunLimits::default());
    let tools: Arc<dyn ToolRunner> = Arc::new(tools);
    let outcome = engine
        .run(Arc::new(workflow), input, tools, RunContext::new())
        .await;
    let body = outcome.response_body();
    let mut errors = Vec::new();
    let mut expect = |what: &str, want: &Value, got: &Value| {
        if want != got {
            errors.push(format!("{what}: expected {want}, got {got}"));
        }
    };

    expect("status", &expected["status"], &body["status"]);
    if let Some(output) = expected.get("output") {
        expect("output", output, &body["output"]);
    }
    if let Some(error) = expected.get("error") {
        expect("error.code", &error["code"], &body["error"]["code"]);
        expect(
            "error.node_id",
            &error["node_id"],
            &body["error"]["node_id"],
        );
    }
    let calls = body["tool_calls"].as_array().cloned().unwrap_or_default();
    if let Some(want) = expected.get("tool_calls").and_then(Value::as_array) {
        expect(
            "tool_calls.len",
            &Value::from(want.len()),
            &Value::from(calls.len()),
        );
        for (k, (want, got)) in want.iter().zip(&calls).enumerate() {
            for key in ["node_id", "tool", "input", "result"] {
                if let Some(w) = want.get(key) {
                    expect(&format!("tool_calls[{k}].{key}"), w, &got[key]);
                }
            }
            if let Some(code) = want.get("error_code") {
                expect(
                    &format!("tool_calls[{k}].error.code"),
                    code,
                    &got["error"]["code"],
                );
            }
        }
    }
    if let Some(nodes) = expected.get("nodes").and_then(Value::as_object) {
        for (id, status) in nodes {
            let got = outcome
                .nodes
                .iter()
                .find(|n| &n.node_id == id)
                .map(|n| serde_json::to_value(n.status).unwrap_or_default());
            expect(
                &format!("nodes.{id}.status"),
                status,
                &got.unwrap_or(Value::Null),
            );
        }
    }
    if let Some(providers) = expected.get("providers").and_then(Value::as_object) {
        for (id, provider) in providers {
            let got = outcome
                .nodes
                .iter()
                .find(|n| &n.node_id == id)
                .and_then(|n| n.provider.clone());
            expect(
                &format!("nodes.{id}.provider"),
                provider,
                &got.map(Value::String).unwrap_or(Value::Null),
            );
        }
    }
    let requests = fake.requests();
    if let Some(n) = expected.get("requests") {
        expect("requests", n, &Value::from(requests.len()));
    }
    for pair in expected
        .get("request_contains")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let index = pair[0].as_u64().unwrap_or(0) as usize;
        let needle = pair[1].as_str().unwrap_or_default();
        let text = requests
            .get(index)
            .map(Value::to_string)
            .unwrap_or_default();
        if !text.contains(needle) {
            errors.push(format!(
                "request {index} does not contain {needle:?}: {text}"
            ));
        }
    }
    // Invariants of every run.
    if outcome.status == pipecat_engine::RunStatus::Success && outcome.error.is_some() {
        errors.push("a successful run carries an error".into());
    }
    let usage_sum: u64 = outcome
        .nodes
        .iter()
        .filter_map(|n| n.usage)
        .map(|u| u.total())
        .sum();
    if usage_sum != outcome.usage.total() {
        errors.push(format!(
            "node usage {usage_sum} does not add up to run usage {}",
            outcome.usage.total()
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\nbody: {body}", errors.join("\n")))
    }
}

#[tokio::test]
async fn all_cases() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .expect("tests/cases")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 12,
        "expected at least 12 cases, found {}",
        dirs.len()
    );
    let mut failures = Vec::new();
    for dir in &dirs {
        if let Err(e) = run_case(dir).await {
            failures.push(format!(
                "case {}:\n{e}",
                dir.file_name().unwrap_or_default().to_string_lossy()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        dirs.len(),
        failures.join("\n\n")
    );
}
