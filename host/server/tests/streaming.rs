//! Server-Sent Events with a real streaming HTTP client: event order and `seq`, tokens adding up to the
//! output, `run_finished` as the REST body, resume after a cut, and cancel on disconnect.

mod common;
mod stream_support;

use std::time::Duration;

use common::{TestServer, calculator_workflow};
use pipecat_fake_llm::{FakeLlm, Reply};
use reqwest::StatusCode;
use serde_json::{Value, json};
use stream_support::{
    SseMessage, SseReader, keys, llm_config, llm_workflow, two_llm_workflow, wait_for,
    wait_requests,
};

async fn open_sse(s: &TestServer, key: &str, id: &str, body: Value) -> reqwest::Response {
    let resp = s
        .http
        .post(format!("{}/invoke/{id}/invoke", s.url))
        .header("x-api-key", key)
        .header("accept", "text/event-stream")
        .json(&body)
        .send()
        .await
        .expect("request sent");
    assert_eq!(resp.status(), StatusCode::OK);
    resp
}

fn types(events: &[SseMessage]) -> Vec<&str> {
    events.iter().map(|e| e.event.as_str()).collect()
}

fn assert_seq_from(events: &[SseMessage], first: u64) {
    for (i, e) in events.iter().enumerate() {
        let seq = first + i as u64;
        assert_eq!(e.data["seq"], seq, "event {i}: {:?}", e.data);
        assert_eq!(e.id.as_deref(), Some(seq.to_string().as_str()));
        assert_eq!(e.data["type"], e.event.as_str());
    }
}

#[tokio::test]
async fn events_come_in_order_with_seq_from_1_and_tokens_add_up_to_the_output() {
    let llm = FakeLlm::start().await;
    let s = TestServer::start(&llm_config(&llm, "")).await;
    let (_, key) = s.account(None).await;
    let id = s.publish(&key, &llm_workflow()).await;
    llm.push(Reply::text("The quick brown fox jumps over the lazy dog."));

    let resp = open_sse(&s, &key, &id, json!({"input": "tell me"})).await;
    let content_type = resp.headers()["content-type"].to_str().expect("ascii");
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let events = SseReader::new(resp).rest().await;

    let t = types(&events);
    assert_eq!(t.first(), Some(&"run_started"));
    assert_eq!(t[1], "node_started");
    assert_eq!(t[t.len() - 2], "node_finished");
    assert_eq!(t.last(), Some(&"run_finished"));
    assert!(t[2..t.len() - 2].iter().all(|t| *t == "token"), "{t:?}");
    assert_seq_from(&events, 1);

    let run_id = events[0].data["run_id"]
        .as_str()
        .expect("run_id")
        .to_string();
    for e in &events {
        assert_eq!(e.data["run_id"], run_id.as_str());
        let ts = e.data["ts"].as_str().expect("ts");
        assert!(
            time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).is_ok(),
            "{ts}"
        );
    }
    let tokens: Vec<&str> = events
        .iter()
        .filter(|e| e.event == "token")
        .map(|e| e.data["text"].as_str().expect("text"))
        .collect();
    assert!(
        tokens.len() > 3,
        "the provider's deltas are streamed: {tokens:?}"
    );
    let finished = &events.last().expect("run_finished").data;
    assert_eq!(finished["status"], "success");
    assert_eq!(
        tokens.concat(),
        finished["output"].as_str().expect("output")
    );
    assert_eq!(
        finished["output"],
        "The quick brown fox jumps over the lazy dog."
    );

    // run_finished carries exactly the REST body's fields; the record is stored before it is sent.
    llm.push(Reply::text("Again."));
    let rest = s.invoke(&key, &id, json!("again")).await;
    let mut event_fields = keys(finished);
    event_fields.retain(|k| !["type", "seq", "ts"].contains(&k.as_str()));
    assert_eq!(event_fields, keys(&rest.body));
    let record = s.get(&format!("/v1/runs/{run_id}"), &key).await;
    assert_eq!(record.body["status"], "success");
    assert_eq!(record.body["output"], finished["output"]);
}

#[tokio::test]
async fn tool_calls_stream_as_tool_call_and_tool_result_events() {
    let s = TestServer::start("").await;
    let (_, key) = s.account(None).await;
    assert_eq!(
        s.upload_shipped(&key, "calculator").await.status,
        StatusCode::CREATED
    );
    let id = s.publish(&key, &calculator_workflow()).await;
    let events = SseReader::new(open_sse(&s, &key, &id, json!({"input": "6 * 7"})).await)
        .rest()
        .await;
    assert_seq_from(&events, 1);
    let t = types(&events);
    let call = t.iter().position(|t| *t == "tool_call").expect("tool_call");
    let result = t
        .iter()
        .position(|t| *t == "tool_result")
        .expect("tool_result");
    assert!(call < result, "{t:?}");
    assert_eq!(events[call].data["tool"], "calculate");
    assert_eq!(events[call].data["input"], json!({"expression": "6 * 7"}));
    let finished = &events.last().expect("run_finished").data;
    assert_eq!(finished["type"], "run_finished");
    assert!(
        finished["output"]
            .as_str()
            .is_some_and(|o| o.contains("42")),
        "{finished}"
    );
    assert_eq!(
        finished["tool_calls"][0]["result"],
        events[result].data["result"]
    );
}

#[tokio::test]
async fn a_cut_client_resumes_with_after_and_last_event_id() {
    let llm = FakeLlm::start().await;
    let s = TestServer::start(&llm_config(&llm, "")).await;
    let (_, key) = s.account(None).await;
    let id = s.publish(&key, &two_llm_workflow()).await;
    llm.push(Reply::text("step one done"));
    llm.push(Reply::Delayed(
        Duration::from_millis(400),
        Box::new(Reply::text("step two is done too")),
    ));

    let resp = open_sse(
        &s,
        &key,
        &id,
        json!({"input": "go", "on_disconnect": "continue"}),
    )
    .await;
    let mut reader = SseReader::new(resp);
    let first = reader
        .until(|m| m.event == "node_finished" && m.data["node_id"] == "first")
        .await;
    drop(reader); // the cut
    assert_seq_from(&first, 1);
    let run_id = first[0].data["run_id"]
        .as_str()
        .expect("run_id")
        .to_string();
    let last_seen = first.len() as u64;

    // Resume while the second node is still running: missed events, then live ones, to the end.
    let resumed = s
        .http
        .get(format!(
            "{}/v1/runs/{run_id}/events?after={last_seen}",
            s.url
        ))
        .header("x-api-key", &key)
        .send()
        .await
        .expect("resume");
    assert_eq!(resumed.status(), StatusCode::OK);
    let rest = SseReader::new(resumed).rest().await;
    assert_seq_from(&rest, last_seen + 1);
    let finished = &rest.last().expect("run_finished").data;
    assert_eq!(finished["type"], "run_finished");
    assert_eq!(finished["status"], "success");
    assert_eq!(finished["output"], "step two is done too");

    // After the end, from the store, with Last-Event-ID: the same events.
    let again = s
        .http
        .get(format!("{}/v1/runs/{run_id}/events", s.url))
        .header("x-api-key", &key)
        .header("last-event-id", last_seen.to_string())
        .send()
        .await
        .expect("replay");
    let replayed = SseReader::new(again).rest().await;
    assert_eq!(
        replayed.iter().map(|m| &m.data).collect::<Vec<_>>(),
        rest.iter().map(|m| &m.data).collect::<Vec<_>>()
    );

    // Errors: a bad `after`, another account's run, a run invoked without streaming.
    let bad = s
        .get(&format!("/v1/runs/{run_id}/events?after=x"), &key)
        .await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    let (_, other) = s.account(None).await;
    let hidden = s.get(&format!("/v1/runs/{run_id}/events"), &other).await;
    assert_eq!(
        (hidden.status, hidden.code()),
        (StatusCode::NOT_FOUND, "run_not_found")
    );
    llm.push(Reply::text("a"));
    llm.push(Reply::text("b"));
    let plain = s.invoke(&key, &id, json!("plain")).await;
    let plain_id = plain.body["run_id"].as_str().expect("run_id");
    let none = s.get(&format!("/v1/runs/{plain_id}/events"), &key).await;
    assert_eq!(
        (none.status, none.code()),
        (StatusCode::NOT_FOUND, "events_not_found")
    );
}

#[tokio::test]
async fn a_client_that_goes_away_cancels_its_run() {
    let llm = FakeLlm::start().await;
    let s = TestServer::start(&llm_config(&llm, "[streaming]\nping_secs = 1\n")).await;
    let (_, key) = s.account(None).await;
    let id = s.publish(&key, &llm_workflow()).await;
    llm.push(Reply::Delayed(
        Duration::from_secs(60),
        Box::new(Reply::text("too late")),
    ));
    let mut reader = SseReader::new(open_sse(&s, &key, &id, json!({"input": "x"})).await);
    let started = reader.until(|m| m.event == "node_started").await;
    let run_id = started[0].data["run_id"]
        .as_str()
        .expect("run_id")
        .to_string();
    wait_requests(&llm, 1).await;
    drop(reader);

    let (s_ref, key_ref, run_ref) = (&s, &key, &run_id);
    let record = wait_for(Duration::from_secs(10), move || async move {
        let r = s_ref.get(&format!("/v1/runs/{run_ref}"), key_ref).await;
        (r.body["status"] == "cancelled").then_some(r.body)
    })
    .await;
    assert_eq!(record["nodes"][0]["error"]["code"], "cancelled");
    // The kept events end with the cancelled run_finished.
    let events = SseReader::new(
        s.http
            .get(format!("{}/v1/runs/{run_id}/events", s.url))
            .header("x-api-key", &key)
            .send()
            .await
            .expect("events"),
    )
    .rest()
    .await;
    assert_seq_from(&events, 1);
    assert_eq!(events.last().expect("last").data["status"], "cancelled");
}

#[tokio::test]
async fn streaming_requests_are_checked_like_rest_ones() {
    let s = TestServer::start("").await;
    let (_, key) = s.account(Some(1)).await;
    let id = s.publish(&key, &common::template_workflow()).await;
    let sse = |body: &'static str| {
        s.http
            .post(format!("{}/invoke/{id}/invoke", s.url))
            .header("x-api-key", &key)
            .header("accept", "text/event-stream")
            .header("content-type", "application/json")
            .body(body)
    };
    let missing = s.send(sse(r#"{"nope": 1}"#)).await;
    assert_eq!(missing.code(), "missing_input");
    let both = s.send(sse(r#"{"input": 1, "mode": "async"}"#)).await;
    assert_eq!(
        (both.status, both.code()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    let ok = s.send(sse(r#"{"input": "Ann"}"#)).await;
    assert_eq!(ok.status, StatusCode::OK);
    let limited = s.send(sse(r#"{"input": "Bob"}"#)).await;
    assert_eq!(
        (limited.status, limited.code()),
        (StatusCode::TOO_MANY_REQUESTS, "run_limit_exceeded")
    );
}

#[tokio::test]
async fn an_idempotent_retry_of_a_streamed_run_replays_its_events() {
    let s = TestServer::start("").await;
    let (_, key) = s.account(None).await;
    let id = s.publish(&key, &common::template_workflow()).await;
    let request = || {
        s.http
            .post(format!("{}/invoke/{id}/invoke", s.url))
            .header("x-api-key", &key)
            .header("accept", "text/event-stream")
            .header("idempotency-key", "stream-1")
            .json(&json!({"input": "Dee"}))
    };
    let first = SseReader::new(request().send().await.expect("first"))
        .rest()
        .await;
    let retry = request().send().await.expect("retry");
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    let replayed = SseReader::new(retry).rest().await;
    assert_eq!(
        replayed.iter().map(|m| &m.data).collect::<Vec<_>>(),
        first.iter().map(|m| &m.data).collect::<Vec<_>>()
    );
    assert_eq!(first.last().expect("last").data["output"], "Hello, Dee!");
    // A JSON retry gets the REST body of the same run.
    let rest = s
        .send(
            s.http
                .post(format!("{}/invoke/{id}/invoke", s.url))
                .header("x-api-key", &key)
                .header("idempotency-key", "stream-1")
                .json(&json!({"input": "Dee"})),
        )
        .await;
    assert_eq!(rest.body["run_id"], first[0].data["run_id"]);
    let runs = s.get(&format!("/v1/workflows/{id}/runs"), &key).await;
    assert_eq!(runs.body["runs"].as_array().map(Vec::len), Some(1));
}
