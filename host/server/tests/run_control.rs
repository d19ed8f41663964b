//! Async runs, cancel (a spinning Wasm tool and a slow provider call), idempotency under concurrent
//! retries, and signed completion webhooks retried against a local receiver.

mod common;
mod stream_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode as AxumStatus};
use common::{TestServer, template_workflow};
use pipecat_fake_llm::{FakeLlm, Fault, Reply};
use reqwest::StatusCode;
use serde_json::{Value, json};
use stream_support::{SseReader, llm_config, llm_workflow, wait_for, wait_requests};

async fn run_status(s: &TestServer, key: &str, run_id: &str) -> Value {
    s.get(&format!("/v1/runs/{run_id}"), key).await.body
}

async fn invoke_async(s: &TestServer, key: &str, id: &str, input: Value) -> String {
    let a = s
        .post(
            &format!("/invoke/{id}/invoke"),
            key,
            &json!({"input": input, "mode": "async"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{:?}", a.body);
    assert_eq!(a.body["status"], "running");
    let run_id = a.body["run_id"].as_str().expect("run_id").to_string();
    assert_eq!(
        a.headers["location"].to_str().expect("ascii"),
        format!("/v1/runs/{run_id}")
    );
    run_id
}

async fn wait_finished(s: &TestServer, key: &str, run_id: &str) -> Value {
    wait_for(Duration::from_secs(10), move || async move {
        let r = run_status(s, key, run_id).await;
        (r["status"] != "running").then_some(r)
    })
    .await
}

#[tokio::test]
async fn async_runs_answer_202_then_poll_to_the_result() {
    let llm = FakeLlm::start().await;
    let s = TestServer::start(&llm_config(&llm, "")).await;
    let (_, key) = s.account(None).await;
    let id = s.publish(&key, &llm_workflow()).await;
    llm.push(Reply::Delayed(
        Duration::from_millis(300),
        Box::new(Reply::text("later")),
    ));
    let run_id = invoke_async(&s, &key, &id, json!("hi")).await;
    let running = run_status(&s, &key, &run_id).await;
    assert_eq!(running["status"], "running", "{running}");
    assert_eq!(running["input"], "hi");
    let done = wait_finished(&s, &key, &run_id).await;
    assert_eq!(done["status"], "success");
    assert_eq!(done["output"], "later");

    // `Prefer: respond-async` does the same; its events can be followed.
    llm.push(Reply::text("preferred"));
    let a = s
        .send(
            s.http
                .post(format!("{}/invoke/{id}/invoke", s.url))
                .header("x-api-key", &key)
                .header("prefer", "respond-async")
                .json(&json!({"input": "x"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    let run_id = a.body["run_id"].as_str().expect("run_id");
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
    assert_eq!(events.first().expect("first").event, "run_started");
    let last = &events.last().expect("last").data;
    assert_eq!(
        (last["type"].as_str(), last["output"].as_str()),
        (Some("run_finished"), Some("preferred"))
    );
}

// Multi-threaded like the real server: on a current-thread runtime the always-ready guest (it yields every
// epoch tick) delays I/O polling to every 61st scheduler tick, about 600 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_spinning_wasm_tool_within_a_second() {
    let s = TestServer::start(
        "[limits]\ntool_timeout_ms = 120000\ntool_fuel = 1000000000000000\nmax_concurrent_runs = 4\n",
    )
    .await;
    let (_, key) = s.account(None).await;
    let bytes = std::fs::read(pipecat_test_components::SANDBOX_GUEST).expect("guest built");
    assert_eq!(
        s.upload(&key, "misbehave", bytes).await.status,
        StatusCode::CREATED
    );
    let doc = json!({"name": "spin", "nodes": [{"id": "spin", "type": "tool", "tool": "misbehave.spin", "arguments": {}}],
        "edges": [], "output": "spin"});
    let id = s.publish(&key, &doc).await;
    let run_id = invoke_async(&s, &key, &id, json!("x")).await;

    // Wait until the tool runs.
    let mut reader = SseReader::new(
        s.http
            .get(format!("{}/v1/runs/{run_id}/events", s.url))
            .header("x-api-key", &key)
            .send()
            .await
            .expect("events"),
    );
    reader.until(|m| m.event == "node_started").await;
    let slots = s.server.state.run_slots.available_permits();
    assert_eq!(slots, 3, "the run holds its permit");

    let started = Instant::now();
    let c = s
        .post(&format!("/v1/runs/{run_id}/cancel"), &key, &json!({}))
        .await;
    let took = started.elapsed();
    assert_eq!(c.status, StatusCode::OK, "{:?}", c.body);
    assert_eq!(c.body["status"], "cancelled");
    eprintln!("cancel took {took:?}");
    assert!(took < Duration::from_secs(3), "cancel took {took:?}");
    // The Wasm work was dropped: the run's task ended and gave its permit back.
    assert_eq!(s.server.state.run_slots.available_permits(), 4);
    assert!(s.server.state.live.is_empty());
    let rest = reader.rest().await;
    assert_eq!(rest.last().expect("finished").data["status"], "cancelled");

    // Cancelling again: the run is no longer running.
    let again = s
        .post(&format!("/v1/runs/{run_id}/cancel"), &key, &json!({}))
        .await;
    assert_eq!(again.body["status"], "cancelled");
}

#[tokio::test]
async fn cancel_stops_a_slow_provider_call_within_a_second() {
    let llm = FakeLlm::start().await;
    let s = TestServer::start(&llm_config(&llm, "")).await;
    let (_, key) = s.account(None).await;
    let (_, other) = s.account(None).await;
    let id = s.publish(&key, &llm_workflow()).await;
    llm.push(Reply::Fault(Fault::Hang));
    let run_id = invoke_async(&s, &key, &id, json!("x")).await;
    wait_requests(&llm, 1).await;

    let hidden = s
        .post(&format!("/v1/runs/{run_id}/cancel"), &other, &json!({}))
        .await;
    assert_eq!(
        (hidden.status, hidden.code()),
        (StatusCode::NOT_FOUND, "run_not_found")
    );

    let started = Instant::now();
    let c = s
        .post(&format!("/v1/runs/{run_id}/cancel"), &key, &json!({}))
        .await;
    let took = started.elapsed();
    assert_eq!(c.status, StatusCode::OK);
    assert_eq!(c.body["status"], "cancelled");
    assert_eq!(c.body["nodes"][0]["status"], "error");
    assert_eq!(c.body["nodes"][0]["error"]["code"], "cancelled");
    eprintln!("cancel took {took:?}");
    assert!(took < Duration::from_secs(3), "cancel took {took:?}");
    assert_eq!(run_status(&s, &key, &run_id).await["status"], "cancelled");

    // A finished run cannot be cancelled.
    llm.push(Reply::text("done"));
    let done = s.invoke(&key, &id, json!("y")).await;
    let done_id = done.body["run_id"].as_str().expect("run_id");
    let late = s
        .post(&format!("/v1/runs/{done_id}/cancel"), &key, &json!({}))
        .await;
    assert_eq!(
        (late.status, late.code()),
        (StatusCode::CONFLICT, "run_not_running")
    );
    let missing = s.post("/v1/runs/not-a-run/cancel", &key, &json!({})).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

fn with_key(
    s: &TestServer,
    key: &str,
    id: &str,
    idem: &str,
    body: Value,
) -> reqwest::RequestBuilder {
    s.http
        .post(format!("{}/invoke/{id}/invoke", s.url))
        .header("x-api-key", key)
        .header("idempotency-key", idem)
        .json(&body)
}

#[tokio::test]
async fn concurrent_retries_with_one_idempotency_key_make_one_run() {
    let s = TestServer::start("").await;
    let (_, key) = s.account(None).await;
    let id = s.publish(&key, &template_workflow()).await;
    let body = json!({"input": "Ann"});

    let answers = futures::future::join_all(
        (0..10).map(|_| s.send(with_key(&s, &key, &id, "order-1", body.clone()))),
    )
    .await;
    let mut run_ids = std::collections::BTreeSet::new();
    for a in &answers {
        match a.status {
            StatusCode::OK => {
                assert_eq!(a.body["output"], "Hello, Ann!");
                run_ids.insert(a.body["run_id"].as_str().expect("run_id").to_string());
            }
            StatusCode::CONFLICT => assert_eq!(a.code(), "idempotency_in_progress"),
            other => panic!("unexpected {other}: {:?}", a.body),
        }
    }
    assert_eq!(run_ids.len(), 1, "{answers:?}");
    let runs = s.get(&format!("/v1/workflows/{id}/runs"), &key).await;
    assert_eq!(runs.body["runs"].as_array().map(Vec::len), Some(1));

    // A later retry replays the first response.
    let replay = s
        .send(with_key(&s, &key, &id, "order-1", body.clone()))
        .await;
    assert_eq!(replay.status, StatusCode::OK);
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    assert_eq!(
        replay.body["run_id"].as_str(),
        run_ids.first().map(String::as_str)
    );
    // The same key with another body: 422. Another account's same key is its own.
    let reused = s
        .send(with_key(&s, &key, &id, "order-1", json!({"input": "Bob"})))
        .await;
    assert_eq!(
        (reused.status, reused.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused")
    );
    let bad = s.send(with_key(&s, &key, &id, "", body.clone())).await;
    assert_eq!(bad.code(), "invalid_idempotency_key");
    let runs = s.get(&format!("/v1/workflows/{id}/runs"), &key).await;
    assert_eq!(runs.body["runs"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn a_retry_while_the_first_runs_is_409_and_a_refused_request_releases_its_key() {
    let llm = FakeLlm::start().await;
    let s = TestServer::start(&llm_config(&llm, "")).await;
    let (_, key) = s.account(None).await;
    let id = s.publish(&key, &llm_workflow()).await;
    llm.push(Reply::Delayed(
        Duration::from_millis(500),
        Box::new(Reply::text("first")),
    ));
    let body = json!({"input": "x"});
    let first = tokio::spawn({
        let req = with_key(&s, &key, &id, "k1", body.clone());
        async move {
            req.send()
                .await
                .expect("sent")
                .json::<Value>()
                .await
                .expect("json")
        }
    });
    wait_requests(&llm, 1).await;
    let busy = s.send(with_key(&s, &key, &id, "k1", body.clone())).await;
    assert_eq!(
        (busy.status, busy.code()),
        (StatusCode::CONFLICT, "idempotency_in_progress")
    );
    let first = first.await.expect("first");
    let replay = s.send(with_key(&s, &key, &id, "k1", body.clone())).await;
    assert_eq!(replay.body, first);

    // 404 (unknown workflow) releases the key: the retry on a good workflow runs.
    let missing = uuid::Uuid::now_v7().to_string();
    let refused = s
        .send(with_key(&s, &key, &missing, "k2", body.clone()))
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    let refused = s
        .send(with_key(&s, &key, &missing, "k2", body.clone()))
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);

    // An async run's response is its 202.
    let a = s
        .send(with_key(
            &s,
            &key,
            &id,
            "k3",
            json!({"input": "y", "mode": "async"}),
        ))
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    let again = s
        .send(with_key(
            &s,
            &key,
            &id,
            "k3",
            json!({"input": "y", "mode": "async"}),
        ))
        .await;
    assert_eq!((again.status, &again.body), (StatusCode::ACCEPTED, &a.body));
}

/// A webhook receiver on a loopback port that fails the first `failures` deliveries with 500.
async fn receiver(failures: usize) -> (String, Arc<Mutex<Vec<(HeaderMap, bytes::Bytes)>>>) {
    let seen: Arc<Mutex<Vec<(HeaderMap, bytes::Bytes)>>> = Arc::default();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let seen = seen.clone();
            move |headers: HeaderMap, body: bytes::Bytes| {
                let seen = seen.clone();
                async move {
                    let mut seen = seen.lock().expect("lock");
                    seen.push((headers, body));
                    if seen.len() <= failures {
                        AxumStatus::INTERNAL_SERVER_ERROR
                    } else {
                        AxumStatus::OK
                    }
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, seen)
}

#[tokio::test]
async fn webhooks_are_signed_and_retried_until_the_receiver_accepts() {
    let secret = "whsec_test_secret";
    let s = TestServer::start(&format!(
        "[webhooks]\nsecret = \"{secret}\"\nallow_private_networks = true\nbackoff_ms = 20\n"
    ))
    .await;
    let (_, key) = s.account(None).await;
    let id = s.publish(&key, &template_workflow()).await;
    let (url, seen) = receiver(2).await;

    let run = s
        .post(
            &format!("/invoke/{id}/invoke"),
            &key,
            &json!({"input": "Ann", "webhook": {"url": url}}),
        )
        .await;
    assert_eq!(run.status, StatusCode::OK);
    let run_id = run.body["run_id"].as_str().expect("run_id").to_string();

    let (s_ref, key_ref, run_ref) = (&s, &key, &run_id);
    let record = wait_for(Duration::from_secs(10), move || async move {
        let r = run_status(s_ref, key_ref, run_ref).await;
        (r["webhook_attempts"].as_array().map(Vec::len) == Some(3)).then_some(r)
    })
    .await;
    let statuses: Vec<&Value> = record["webhook_attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| &a["status"])
        .collect();
    assert_eq!(statuses, [&json!(500), &json!(500), &json!(200)]);

    let deliveries = seen.lock().expect("lock").clone();
    assert_eq!(deliveries.len(), 3);
    for (headers, body) in &deliveries {
        let sig = headers["pipecat-signature"].to_str().expect("ascii");
        let (t, v1) = sig
            .split_once(',')
            .and_then(|(t, v)| Some((t.strip_prefix("t=")?, v.strip_prefix("v1=")?)))
            .expect("t=…,v1=…");
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let t: i64 = t.parse().expect("unix time");
        assert!((now - t).abs() < 60);
        let mut signed = format!("{t}.").into_bytes();
        signed.extend_from_slice(body);
        assert_eq!(
            v1,
            hex::encode(pipecat::webhook::hmac_sha256(secret.as_bytes(), &signed))
        );
        assert_ne!(
            v1,
            hex::encode(pipecat::webhook::hmac_sha256(b"wrong", &signed))
        );
        let delivered: Value = serde_json::from_slice(body).expect("JSON body");
        assert_eq!(delivered, run.body);
    }
}

#[tokio::test]
async fn webhooks_to_private_addresses_are_refused_unless_allowed() {
    let s = TestServer::start("[webhooks]\nsecret = \"s\"\n").await;
    let (_, key) = s.account(Some(5)).await;
    let id = s.publish(&key, &template_workflow()).await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost/x",
        "http://10.0.0.1/",
    ] {
        let a = s
            .post(
                &format!("/invoke/{id}/invoke"),
                &key,
                &json!({"input": "x", "webhook": {"url": url}}),
            )
            .await;
        assert_eq!(
            (a.status, a.code()),
            (StatusCode::BAD_REQUEST, "webhook_not_allowed"),
            "{url}"
        );
    }
    let bad = s
        .post(
            &format!("/invoke/{id}/invoke"),
            &key,
            &json!({"input": "x", "webhook": {"url": "ftp://example.com"}}),
        )
        .await;
    assert_eq!(bad.code(), "invalid_webhook");
    let runs = s.get(&format!("/v1/workflows/{id}/runs"), &key).await;
    assert_eq!(runs.body["runs"].as_array().map(Vec::len), Some(0));
}

/// With `max_concurrent_runs_per_account`, one account's runs in flight cannot take every slot: its next
/// invocation is refused with `503 overloaded` (`"scope": "account"`), while another account still runs.
#[tokio::test]
async fn an_account_at_its_own_concurrency_limit_is_refused_and_others_still_run() {
    let llm = FakeLlm::start().await;
    llm.set_default(Reply::Delayed(
        Duration::from_secs(30),
        Box::new(Reply::text("late")),
    ));
    let s = TestServer::start(&llm_config(
        &llm,
        "[limits]\nmax_concurrent_runs = 10\nmax_concurrent_runs_per_account = 2\n",
    ))
    .await;
    let (_, a) = s.account(None).await;
    let (_, b) = s.account(None).await;
    let wa = s.publish(&a, &llm_workflow()).await;
    let wb = s.publish(&b, &llm_workflow()).await;
    let body = json!({"input": "hi", "mode": "async"});
    let start = |key: String, id: String| {
        let body = body.clone();
        let s = &s;
        async move { s.post(&format!("/invoke/{id}/invoke"), &key, &body).await }
    };
    let mut running = Vec::new();
    for _ in 0..2 {
        let r = start(a.clone(), wa.clone()).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        running.push((
            a.clone(),
            r.body["run_id"].as_str().expect("run id").to_string(),
        ));
    }
    let refused = start(a.clone(), wa.clone()).await;
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        refused.body
    );
    assert_eq!(refused.body["error"]["code"], "overloaded");
    assert_eq!(refused.body["error"]["scope"], "account");
    assert_eq!(refused.body["error"]["limit"], 2);
    assert_eq!(refused.headers["retry-after"], "1");

    let other = start(b.clone(), wb.clone()).await;
    assert_eq!(
        other.status,
        StatusCode::ACCEPTED,
        "another account runs: {}",
        other.body
    );
    running.push((
        b.clone(),
        other.body["run_id"].as_str().expect("run id").to_string(),
    ));

    // A finished run gives its slot back.
    let (key, first) = &running[0];
    let cancelled = s
        .post(&format!("/v1/runs/{first}/cancel"), key, &json!({}))
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    let again = wait_for(Duration::from_secs(10), || async {
        let r = start(a.clone(), wa.clone()).await;
        (r.status == StatusCode::ACCEPTED).then(|| r.body["run_id"].as_str().map(str::to_string))
    })
    .await;
    running.push((a.clone(), again.expect("run id")));
    for (key, run) in &running[1..] {
        s.post(&format!("/v1/runs/{run}/cancel"), key, &json!({}))
            .await;
    }
}
