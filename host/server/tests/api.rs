//! Accounts, keys, plugins, workflows, runs and operations routes against the in-process server.

mod common;

use common::{ADMIN, TestServer, calculator_workflow, template_workflow};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn health_ready_and_request_ids() {
    let s = TestServer::start("").await;
    let h = s.send(s.http.get(format!("{}/healthz", s.url))).await;
    assert_eq!(h.status, StatusCode::OK);
    let generated = h.headers.get("x-request-id").expect("generated request id");
    assert!(!generated.is_empty());
    let r = s
        .send(
            s.http
                .get(format!("{}/readyz", s.url))
                .header("x-request-id", "abc-123"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.headers
            .get("x-request-id")
            .map(|v| v.to_str().unwrap_or("")),
        Some("abc-123")
    );
    let missing = s.get("/no/such/route", ADMIN).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.code(), "not_found");
}

#[tokio::test]
async fn openapi_documents_every_route() {
    let s = TestServer::start("").await;
    let doc = s.get("/openapi.json", "").await;
    assert_eq!(doc.status, StatusCode::OK);
    for (method, path) in pipecat::routes::ROUTES {
        assert!(
            doc.body["paths"][path][method].is_object(),
            "{method} {path} not in /openapi.json"
        );
    }
}

#[tokio::test]
async fn accounts_are_admin_only_and_plans_apply() {
    let s = TestServer::start("[plans.team]\nmonthly_run_limit = 500\n").await;
    let created = s
        .post(
            "/v1/accounts",
            ADMIN,
            &json!({"name": "acme", "plan": "team"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.body["monthly_run_limit"], 500);
    assert_eq!(created.body["plan"], "team");
    let id = created.body["id"].as_str().expect("id").to_string();

    let over = s
        .post(
            "/v1/accounts",
            ADMIN,
            &json!({"name": "big", "plan": "free", "monthly_run_limit": 7}),
        )
        .await;
    assert_eq!(over.body["monthly_run_limit"], 7);
    let unknown = s
        .post("/v1/accounts", ADMIN, &json!({"name": "x", "plan": "gold"}))
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);

    let list = s.get("/v1/accounts", ADMIN).await;
    assert_eq!(list.body["accounts"].as_array().map(Vec::len), Some(2));
    let patched = s
        .send(
            s.http
                .patch(format!("{}/v1/accounts/{id}", s.url))
                .header("x-api-key", ADMIN)
                .json(&json!({"plan": "pro"})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK);
    assert_eq!(patched.body["monthly_run_limit"], 100_000);
    assert_eq!(
        s.get(&format!("/v1/accounts/{id}"), ADMIN).await.body["plan"],
        "pro"
    );
    assert_eq!(
        s.get("/v1/accounts/not-a-uuid", ADMIN).await.status,
        StatusCode::NOT_FOUND
    );

    // Without the admin key, and with an account key: the same 401.
    let (_, key) = s.account(None).await;
    for k in ["", "wrong", key.as_str()] {
        let a = s.get("/v1/accounts", k).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert_eq!(a.code(), "unauthorized");
    }
    // The admin key does not work on account routes.
    assert_eq!(
        s.get("/v1/workflows", ADMIN).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn keys_are_shown_once_and_revoked_at_once() {
    let s = TestServer::start("").await;
    let (account, key) = s.account(None).await;
    assert!(key.starts_with("pc_live_"));
    assert_eq!(s.get("/v1/workflows", &key).await.status, StatusCode::OK);

    let keys = s.get(&format!("/v1/accounts/{account}/keys"), ADMIN).await;
    let listed = keys.body["keys"].as_array().expect("keys").clone();
    assert_eq!(listed.len(), 1);
    assert!(
        !keys.body.to_string().contains(&key),
        "the key itself is listed"
    );
    let key_id = listed[0]["id"].as_str().expect("key id").to_string();

    let revoked = s.delete(&format!("/v1/keys/{key_id}"), ADMIN).await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    let after = s.get("/v1/workflows", &key).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);

    // Missing, malformed, unknown (well-formed) and revoked keys: one body.
    let unknown = pipecat::keys::generate_live();
    let mut bodies = vec![after.body.clone()];
    for k in ["", "pc_live_garbage", unknown.as_str()] {
        let a = s.get("/v1/workflows", k).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        bodies.push(a.body);
    }
    let no_header = s.send(s.http.get(format!("{}/v1/workflows", s.url))).await;
    bodies.push(no_header.body);
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "401 bodies differ: {bodies:?}"
    );
}

#[tokio::test]
async fn plugins_upload_version_and_refuse_bad_bytes() {
    let s = TestServer::start("[limits]\nmax_plugin_bytes = 8000000\n").await;
    let (_, key) = s.account(None).await;
    let bytes = common::shipped("calculator");
    let up = s.upload_shipped(&key, "calculator").await;
    assert_eq!(up.status, StatusCode::CREATED, "{:?}", up.body);
    assert_eq!(up.body["id"], blake3::hash(bytes).to_hex().to_string());
    assert_eq!(up.body["size"], bytes.len());
    let tools = up.body["tools"].as_array().expect("tools");
    assert!(
        tools
            .iter()
            .any(|t| t["name"] == "calculate" && t["parameters"].is_object())
    );

    // Same bytes again: a new version with the same content id.
    let again = s.upload_shipped(&key, "calculator").await;
    assert_eq!(again.body["version"], 2);
    assert_eq!(again.body["id"], up.body["id"]);
    let one = s.get("/v1/plugins/calculator", &key).await;
    assert_eq!(one.body["versions"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        s.get("/v1/plugins", &key).await.body["plugins"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // Wrong content type, not wasm, a core module, too large.
    let wrong_type = s
        .send(
            s.http
                .post(format!("{}/v1/plugins?name=x", s.url))
                .header("x-api-key", &key)
                .body(bytes.to_vec()),
        )
        .await;
    assert_eq!(wrong_type.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let not_wasm = s.upload(&key, "x", b"hello world".to_vec()).await;
    assert_eq!(not_wasm.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(not_wasm.code(), "not_a_component");
    let core = s.upload(&key, "x", b"\0asm\x01\0\0\0".to_vec()).await;
    assert_eq!(core.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(core.code(), "not_a_component");
    let big = s.upload(&key, "x", vec![0u8; 8_000_001]).await;
    assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(big.code(), "payload_too_large");
    let no_name = s.upload(&key, "", bytes.to_vec()).await;
    assert_eq!(no_name.status, StatusCode::BAD_REQUEST);

    // Another account sees none of it.
    let (_, other) = s.account(None).await;
    assert_eq!(
        s.get("/v1/plugins/calculator", &other).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.delete("/v1/plugins/calculator", &other).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.delete("/v1/plugins/calculator", &key).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.get("/v1/plugins/calculator", &key).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn workflows_crud_publish_and_isolation() {
    let s = TestServer::start("").await;
    let (_, key) = s.account(None).await;
    let (_, other) = s.account(None).await;

    let created = s.post("/v1/workflows", &key, &template_workflow()).await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.body["published_version"], serde_json::Value::Null);
    assert_eq!(created.body["name"], "greet");
    assert!(created.body["draft"]["nodes"].is_array());
    let id = created.body["id"].as_str().expect("id").to_string();

    assert_eq!(
        s.get(&format!("/v1/workflows/{id}"), &key).await.status,
        StatusCode::OK
    );
    assert_eq!(
        s.get(&format!("/v1/workflows/{id}"), &other).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.get("/v1/workflows/nope", &key).await.code(),
        "workflow_not_found"
    );
    assert_eq!(
        s.get("/v1/workflows", &other).await.body["workflows"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );
    assert_eq!(
        s.post(&format!("/v1/workflows/{id}/publish"), &other, &json!({}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let p1 = s
        .post(&format!("/v1/workflows/{id}/publish"), &key, &json!({}))
        .await;
    assert_eq!(p1.status, StatusCode::OK);
    assert_eq!(p1.body["version"], 1);
    assert_eq!(p1.body["workflow_id"], id.as_str());
    assert!(p1.body["published_at"].is_string());

    // Replace the draft; the published version does not change until published again.
    let mut doc = template_workflow();
    doc["nodes"][0]["template"] = json!("Bye, {{ input }}!");
    assert_eq!(
        s.put(&format!("/v1/workflows/{id}"), &key, &doc)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        s.invoke(&key, &id, json!("Ann")).await.body["output"],
        "Hello, Ann!"
    );
    let p2 = s
        .post(&format!("/v1/workflows/{id}/publish"), &key, &json!({}))
        .await;
    assert_eq!(p2.body["version"], 2);
    assert_eq!(
        s.invoke(&key, &id, json!("Ann")).await.body["output"],
        "Bye, Ann!"
    );
    let v1 = s
        .post(
            &format!("/invoke/{id}/invoke"),
            &key,
            &json!({"input": "Ann", "version": 1}),
        )
        .await;
    assert_eq!(v1.body["output"], "Hello, Ann!");
    let versions = s.get(&format!("/v1/workflows/{id}/versions"), &key).await;
    assert_eq!(versions.body["versions"].as_array().map(Vec::len), Some(2));

    assert_eq!(
        s.delete(&format!("/v1/workflows/{id}"), &other)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.delete(&format!("/v1/workflows/{id}"), &key).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.get(&format!("/v1/workflows/{id}"), &key).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn publish_lists_every_problem() {
    let s = TestServer::start("").await;
    let (_, key) = s.account(None).await;
    let bad = json!({
        "name": "bad",
        "nodes": [
            {"id": "a", "type": "tool", "tool": "nope.missing", "arguments": {}},
            {"id": "a", "type": "template", "template": "x"},
            {"id": "c", "type": "llm", "provider": "no-such-provider", "model": "m", "prompt": "hi"}
        ],
        "edges": [{"from": "a", "to": "ghost"}],
        "output": "c"
    });
    let w = s.post("/v1/workflows", &key, &bad).await;
    let id = w.body["id"].as_str().expect("id");
    let p = s
        .post(&format!("/v1/workflows/{id}/publish"), &key, &json!({}))
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(p.code(), "invalid_workflow");
    let details = p.body["error"]["details"].as_array().expect("details");
    assert!(details.len() >= 3, "{details:?}");
    for d in details {
        assert!(d["path"].is_string() && d["code"].is_string() && d["message"].is_string());
    }
    let codes: Vec<&str> = details.iter().filter_map(|d| d["code"].as_str()).collect();
    assert!(codes.contains(&"duplicate_id"), "{codes:?}");
    assert!(codes.contains(&"unknown_provider"), "{codes:?}");
}

#[tokio::test]
async fn publish_pins_the_plugin_version() {
    let s = TestServer::start("").await;
    let (_, key) = s.account(None).await;
    let up = s.upload_shipped(&key, "calculator").await;
    let id = s.publish(&key, &calculator_workflow()).await;
    let versions = s.get(&format!("/v1/workflows/{id}/versions"), &key).await;
    assert_eq!(
        versions.body["versions"][0]["pins"]["calculator"],
        up.body["id"]
    );
    // A later upload under the same name (other bytes) does not change the published version.
    s.upload_shipped(&key, "text").await;
    let replaced = s
        .upload(&key, "calculator", common::shipped("text").to_vec())
        .await;
    assert_eq!(replaced.status, StatusCode::CREATED);
    let run = s.invoke(&key, &id, json!("2 + 3")).await;
    assert_eq!(run.body["status"], "success", "{:?}", run.body);
    let output = run.body["output"].as_str().expect("text output");
    assert!(
        output.starts_with("2 + 3 = ") && output.contains('5'),
        "{output}"
    );
    assert_eq!(run.body["tool_calls"][0]["tool"], "calculate");
}

#[tokio::test]
async fn runs_are_recorded_and_paginated() {
    let s = TestServer::start("").await;
    let (_, key) = s.account(None).await;
    let (_, other) = s.account(None).await;
    s.upload_shipped(&key, "calculator").await;
    let id = s.publish(&key, &calculator_workflow()).await;
    let ok = s.invoke(&key, &id, json!("1 + 1")).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.body["status"], "success");
    let failed = s.invoke(&key, &id, json!("1 +")).await;
    assert_eq!(failed.status, StatusCode::OK);
    assert_eq!(failed.body["status"], "error", "{:?}", failed.body);
    assert_eq!(failed.body["error"]["node_id"], "calc");
    for i in 0..3 {
        s.invoke(&key, &id, json!(format!("{i} * 2"))).await;
    }

    let run_id = ok.body["run_id"].as_str().expect("run id");
    let run = s.get(&format!("/v1/runs/{run_id}"), &key).await;
    assert_eq!(run.status, StatusCode::OK);
    for field in [
        "run_id",
        "workflow_id",
        "version",
        "status",
        "input",
        "output",
        "error",
        "tool_calls",
        "nodes",
        "usage",
        "started_at",
        "duration_ms",
    ] {
        assert!(
            run.body.get(field).is_some(),
            "run lacks {field}: {:?}",
            run.body
        );
    }
    assert_eq!(run.body["input"], "1 + 1");
    assert_eq!(run.body["nodes"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        s.get(&format!("/v1/runs/{run_id}"), &other).await.status,
        StatusCode::NOT_FOUND
    );

    let errors = s
        .get(&format!("/v1/workflows/{id}/runs?status=error"), &key)
        .await;
    assert_eq!(errors.body["runs"].as_array().map(Vec::len), Some(1));
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = cursor
            .as_ref()
            .map(|c| format!("&cursor={c}"))
            .unwrap_or_default();
        let page = s
            .get(&format!("/v1/workflows/{id}/runs?limit=2{q}"), &key)
            .await;
        assert_eq!(page.status, StatusCode::OK);
        let runs = page.body["runs"].as_array().expect("runs").clone();
        assert!(runs.len() <= 2);
        seen.extend(
            runs.iter()
                .map(|r| r["run_id"].as_str().unwrap_or_default().to_string()),
        );
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(seen, sorted, "runs are not newest first");
    assert_eq!(
        s.get(&format!("/v1/workflows/{id}/runs"), &other)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}
