//! End-to-end tests of the real `pipecat` binary on port 0: crash safety (kill -9) and graceful SIGTERM.

use std::time::Duration;

use pipecat_fake_llm::{FakeLlm, Reply};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[path = "common/process.rs"]
mod process;

use process::{ADMIN, Binary};

async fn call(http: &reqwest::Client, req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let _ = http;
    let resp = req.send().await.expect("request");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Creates an account, a key and a published template workflow; returns `(account, key, workflow)`.
async fn setup(http: &reqwest::Client, url: &str, doc: Value) -> (String, String, String) {
    let (_, acct) = call(
        http,
        http.post(format!("{url}/v1/accounts"))
            .header("x-api-key", ADMIN)
            .json(&json!({"name": "e2e"})),
    )
    .await;
    let account = acct["id"].as_str().expect("account").to_string();
    let (_, k) = call(
        http,
        http.post(format!("{url}/v1/accounts/{account}/keys"))
            .header("x-api-key", ADMIN)
            .json(&json!({"name": "k"})),
    )
    .await;
    let key = k["key"].as_str().expect("key").to_string();
    let (_, w) = call(
        http,
        http.post(format!("{url}/v1/workflows"))
            .header("x-api-key", &key)
            .json(&doc),
    )
    .await;
    let id = w["id"].as_str().expect("workflow").to_string();
    let (st, _) = call(
        http,
        http.post(format!("{url}/v1/workflows/{id}/publish"))
            .header("x-api-key", &key),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    (account, key, id)
}

fn template_doc() -> Value {
    json!({"name": "t", "nodes": [{"id": "r", "type": "template", "template": "got {{ input }}"}], "edges": [], "output": "r"})
}

#[tokio::test]
async fn kill_9_loses_no_acknowledged_run() {
    let dir = tempfile::tempdir().expect("dir");
    let http = reqwest::Client::new();
    let mut server = Binary::start(dir.path(), None, &[]);
    let (account, key, id) = setup(&http, &server.url, template_doc()).await;

    let invokes = (0..16).map(|i| {
        call(
            &http,
            http.post(format!("{}/invoke/{id}/invoke", server.url))
                .header("x-api-key", &key)
                .json(&json!({"input": i})),
        )
    });
    let answers = futures::future::join_all(invokes).await;
    // SIGKILL right after the last answer: no shutdown, no flush.
    server.child.kill().expect("kill -9");
    let _ = server.child.wait();
    drop(server);

    let acknowledged: Vec<String> = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::OK)
        .map(|(_, body)| body["run_id"].as_str().expect("run id").to_string())
        .collect();
    assert_eq!(acknowledged.len(), 16);

    let server = Binary::start(dir.path(), None, &[]);
    for run_id in &acknowledged {
        let (status, run) = call(
            &http,
            http.get(format!("{}/v1/runs/{run_id}", server.url))
                .header("x-api-key", &key),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "run {run_id} lost");
        assert_eq!(run["status"], "success");
    }
    let (_, acct) = call(
        &http,
        http.get(format!("{}/v1/accounts/{account}", server.url))
            .header("x-api-key", ADMIN),
    )
    .await;
    assert_eq!(acct["runs_this_month"], 16);
}

#[tokio::test]
async fn sigterm_drains_the_run_in_flight_and_exits_0() {
    let dir = tempfile::tempdir().expect("dir");
    let llm = FakeLlm::start().await;
    let config = dir.path().join("pipecat.toml");
    std::fs::write(
        &config,
        format!(
            "[[providers]]\nname = \"openai\"\nkind = \"openai\"\nbase_url = \"{}\"\n",
            llm.openai_base_url()
        ),
    )
    .expect("config");
    let data = dir.path().join("data");
    let mut server = Binary::start(&data, Some(&config), &[]);
    let http = reqwest::Client::new();
    let doc = json!({"name": "slow", "nodes": [{"id": "l", "type": "llm", "provider": "openai", "model": "m", "prompt": "{{ input }}"}],
        "edges": [], "output": "l"});
    let (_, key, id) = setup(&http, &server.url, doc).await;

    llm.push(Reply::Delayed(
        Duration::from_millis(1500),
        Box::new(Reply::text("finished")),
    ));
    let url = format!("{}/invoke/{id}/invoke", server.url);
    let in_flight = tokio::spawn({
        let http = http.clone();
        let key = key.clone();
        async move {
            call(
                &http,
                http.post(url)
                    .header("x-api-key", key)
                    .json(&json!({"input": "hi"})),
            )
            .await
        }
    });
    // Wait until the run has reached the provider, then ask the server to stop.
    while llm.request_count() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.signal("TERM");

    let (status, body) = in_flight.await.expect("request task");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "success");
    assert_eq!(body["output"], "finished");
    let exit = tokio::task::spawn_blocking(move || server.child.wait().expect("wait"))
        .await
        .expect("join");
    assert_eq!(exit.code(), Some(0), "exit status {exit:?}");
}
