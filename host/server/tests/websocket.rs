//! `GET /invoke/{id}/ws` with a real WebSocket client (tokio-tungstenite): authentication by header or by
//! message, several runs on one connection, close codes (1008, 1009, 4408, 1001), ping/pong and cancel
//! on disconnect.

mod common;
mod stream_support;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{TestServer, template_workflow};
use futures::SinkExt;
use pipecat_fake_llm::{FakeLlm, Reply};
use serde_json::{Value, json};
use stream_support::{llm_config, llm_workflow, wait_for, wait_requests};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(s: &TestServer, id: &str, key: Option<&str>) -> Socket {
    let url = format!("{}/invoke/{id}/ws", s.url.replacen("http", "ws", 1));
    let mut req = url.into_client_request().expect("request");
    if let Some(key) = key {
        req.headers_mut()
            .insert("x-api-key", key.parse().expect("header"));
    }
    let (socket, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("connected");
    socket
}

async fn send(socket: &mut Socket, v: Value) {
    socket
        .send(Message::Text(v.to_string().into()))
        .await
        .expect("sent");
}

/// The next JSON message (control frames skipped); `Err(close code)` when the server closes.
async fn recv(socket: &mut Socket) -> Result<Value, u16> {
    common::ws_next(socket, Duration::from_secs(10)).await
}

async fn ready(socket: &mut Socket) {
    let hello = recv(socket).await.expect("ready");
    assert_eq!(hello["type"], "ready", "{hello}");
}

#[tokio::test]
async fn several_runs_stream_on_one_connection() {
    let s = TestServer::start("").await;
    let (_, key) = s.account(None).await;
    let id = s.publish(&key, &template_workflow()).await;
    let mut socket = connect(&s, &id, Some(&key)).await;
    ready(&mut socket).await;

    send(
        &mut socket,
        json!({"type": "invoke", "input": "Ann", "id": "a"}),
    )
    .await;
    send(&mut socket, json!({"input": "Bob", "id": 2})).await;
    send(&mut socket, json!({"type": "ping"})).await;
    let mut runs: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut finished = 0;
    let mut pong = false;
    while finished < 2 || !pong {
        let m = recv(&mut socket).await.expect("event");
        if m["type"] == "pong" {
            pong = true;
            continue;
        }
        let run_id = m["run_id"]
            .as_str()
            .expect("every event names its run")
            .to_string();
        if m["type"] == "run_finished" {
            finished += 1;
        }
        runs.entry(run_id).or_default().push(m);
    }
    assert_eq!(runs.len(), 2);
    let mut outputs = Vec::new();
    for events in runs.values() {
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e["seq"], i as u64 + 1, "{e}");
            assert!(e["ts"].is_string());
        }
        assert_eq!(events[0]["type"], "run_started");
        let last = events.last().expect("last");
        assert_eq!(last["type"], "run_finished");
        assert_eq!(last["status"], "success");
        outputs.push((last["id"].clone(), last["output"].clone()));
    }
    outputs.sort_by_key(|(id, _)| id.to_string());
    assert_eq!(
        outputs,
        [
            (json!("a"), json!("Hello, Ann!")),
            (json!(2), json!("Hello, Bob!"))
        ]
    );

    // Request-level errors answer on the connection and start no run.
    send(&mut socket, json!({"type": "invoke", "id": "x"})).await;
    let e = recv(&mut socket).await.expect("error");
    assert_eq!(
        (e["type"].as_str(), e["id"].as_str()),
        (Some("error"), Some("x"))
    );
    assert_eq!(e["error"]["code"], "missing_input");
    socket
        .send(Message::Text("not json".into()))
        .await
        .expect("sent");
    assert_eq!(
        recv(&mut socket).await.expect("error")["error"]["code"],
        "invalid_json"
    );
    socket.close(None).await.expect("closed");
    let runs = s.get(&format!("/v1/workflows/{id}/runs"), &key).await;
    assert_eq!(runs.body["runs"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn the_key_can_come_in_a_first_message_and_a_bad_key_closes_1008() {
    let s = TestServer::start("").await;
    let (_, key) = s.account(None).await;
    let id = s.publish(&key, &template_workflow()).await;

    let mut socket = connect(&s, &id, None).await;
    send(&mut socket, json!({"type": "auth", "api_key": key})).await;
    ready(&mut socket).await;
    send(&mut socket, json!({"input": "Cy"})).await;
    loop {
        let m = recv(&mut socket).await.expect("event");
        if m["type"] == "run_finished" {
            assert_eq!(m["output"], "Hello, Cy!");
            break;
        }
    }

    let mut bad = connect(&s, &id, None).await;
    send(&mut bad, json!({"type": "auth", "api_key": "pc_live_nope"})).await;
    assert_eq!(recv(&mut bad).await, Err(1008));
    let mut skipped = connect(&s, &id, None).await;
    send(&mut skipped, json!({"input": "no auth first"})).await;
    assert_eq!(recv(&mut skipped).await, Err(1008));
    let mut header = connect(&s, &id, Some("pc_live_wrong")).await;
    assert_eq!(recv(&mut header).await, Err(1008));
    let runs = s.get(&format!("/v1/workflows/{id}/runs"), &key).await;
    assert_eq!(runs.body["runs"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn too_big_messages_close_1009_and_idle_connections_4408() {
    let s =
        TestServer::start("[streaming]\nws_max_message_bytes = 1024\nws_idle_timeout_secs = 1\n")
            .await;
    let (_, key) = s.account(None).await;
    let id = s.publish(&key, &template_workflow()).await;

    let mut socket = connect(&s, &id, Some(&key)).await;
    ready(&mut socket).await;
    send(&mut socket, json!({"input": "x".repeat(1500)})).await;
    assert_eq!(recv(&mut socket).await, Err(1009));

    let mut idle = connect(&s, &id, Some(&key)).await;
    ready(&mut idle).await;
    assert_eq!(recv(&mut idle).await, Err(4408));
}

#[tokio::test]
async fn a_dropped_connection_cancels_its_runs_and_shutdown_closes_1001() {
    let llm = FakeLlm::start().await;
    let s = TestServer::start(&llm_config(&llm, "")).await;
    let (_, key) = s.account(None).await;
    let id = s.publish(&key, &llm_workflow()).await;
    llm.push(Reply::Delayed(
        Duration::from_secs(60),
        Box::new(Reply::text("never seen")),
    ));

    let mut socket = connect(&s, &id, Some(&key)).await;
    ready(&mut socket).await;
    send(&mut socket, json!({"input": "x"})).await;
    let started = recv(&mut socket).await.expect("run_started");
    let run_id = started["run_id"].as_str().expect("run_id").to_string();
    wait_requests(&llm, 1).await;
    drop(socket);

    let (s_ref, key_ref, run_ref) = (&s, &key, &run_id);
    wait_for(Duration::from_secs(10), move || async move {
        let r = s_ref.get(&format!("/v1/runs/{run_ref}"), key_ref).await;
        (r.body["status"] == "cancelled").then_some(())
    })
    .await;

    let mut socket = connect(&s, &id, Some(&key)).await;
    ready(&mut socket).await;
    s.server.shutdown();
    assert_eq!(recv(&mut socket).await, Err(1001));
}

#[tokio::test]
async fn revoking_the_key_closes_an_open_connection_at_its_next_message() {
    let s = TestServer::start("").await;
    let (account, key) = s.account(None).await;
    let id = s.publish(&key, &template_workflow()).await;
    let mut socket = connect(&s, &id, Some(&key)).await;
    ready(&mut socket).await;
    send(&mut socket, json!({"type": "ping", "id": 1})).await;
    assert_eq!(recv(&mut socket).await.expect("pong")["type"], "pong");

    let keys = s
        .get(&format!("/v1/accounts/{account}/keys"), common::ADMIN)
        .await;
    let key_id = keys.body["keys"][0]["id"]
        .as_str()
        .expect("key id")
        .to_string();
    let second = s
        .post(
            &format!("/v1/accounts/{account}/keys"),
            common::ADMIN,
            &json!({"name": "second"}),
        )
        .await;
    let second = second.body["key"]
        .as_str()
        .expect("a second key")
        .to_string();
    let revoked = s.delete(&format!("/v1/keys/{key_id}"), common::ADMIN).await;
    assert_eq!(revoked.status, reqwest::StatusCode::NO_CONTENT);

    send(&mut socket, json!({"input": "after revocation"})).await;
    assert_eq!(recv(&mut socket).await, Err(1008));
    let runs = s.get(&format!("/v1/workflows/{id}/runs"), &second).await;
    assert_eq!(
        runs.body["runs"].as_array().map(Vec::len),
        Some(0),
        "no run started with the revoked key: {}",
        runs.body
    );
}

#[tokio::test]
async fn each_invoke_message_counts_against_the_key_rate() {
    // A burst of 3: the upgrade takes one, two runs the rest; the third run is refused.
    let s = TestServer::start("[limits]\nrate_per_key_per_second = 0.001\nrate_burst = 3\n").await;
    let (account, key) = s.account(None).await;
    let id = s.publish(&key, &template_workflow()).await;
    // A key of its own, untouched by the set-up's requests (the rate is per key).
    let fresh = s
        .post(
            &format!("/v1/accounts/{account}/keys"),
            common::ADMIN,
            &json!({"name": "ws"}),
        )
        .await;
    let fresh = fresh.body["key"]
        .as_str()
        .expect("a second key")
        .to_string();
    let mut socket = connect(&s, &id, Some(&fresh)).await;
    ready(&mut socket).await;
    let mut finished = 0;
    let mut refused = Vec::new();
    for n in 0..3 {
        send(&mut socket, json!({"input": "Cy", "id": n})).await;
    }
    while finished + refused.len() < 3 {
        let m = recv(&mut socket).await.expect("message");
        match m["type"].as_str() {
            Some("run_finished") => finished += 1,
            Some("error") => refused.push(m),
            _ => {}
        }
    }
    assert_eq!(finished, 2, "{refused:?}");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(
        refused[0]["error"]["code"], "rate_limited",
        "{}",
        refused[0]
    );
    assert_eq!(refused[0]["id"], 2);
}
