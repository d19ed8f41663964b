//! Every row of CONTRACT §5's error table, and the exactness of monthly limits under concurrency.

mod common;

use common::{TestServer, template_workflow};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn bad_bodies_keys_and_ids() {
    let s = TestServer::start("[limits]\nmax_body_bytes = 2000\n").await;
    let (_, key) = s.account(None).await;
    let id = s.publish(&key, &template_workflow()).await;
    let url = format!("{}/invoke/{id}/invoke", s.url);
    let post = |body: &'static str, ct: Option<&'static str>, k: &str| {
        let mut r = s
            .http
            .post(&url)
            .header("x-api-key", k.to_string())
            .body(body);
        if let Some(ct) = ct {
            r = r.header("content-type", ct);
        }
        r
    };

    let ok = s
        .send(post(r#"{"input": "Bob"}"#, Some("application/json"), &key))
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.body["status"], "success");
    assert_eq!(ok.body["output"], "Hello, Bob!");
    assert!(ok.body["run_id"].is_string());
    assert!(ok.body["tool_calls"].as_array().is_some_and(Vec::is_empty));

    // 400 invalid_json / missing_input
    let not_json = s.send(post("{nope", Some("application/json"), &key)).await;
    assert_eq!(
        (not_json.status, not_json.code()),
        (StatusCode::BAD_REQUEST, "invalid_json")
    );
    let no_input = s
        .send(post(r#"{"inputs": 1}"#, Some("application/json"), &key))
        .await;
    assert_eq!(
        (no_input.status, no_input.code()),
        (StatusCode::BAD_REQUEST, "missing_input")
    );
    let not_object = s.send(post("[1]", Some("application/json"), &key)).await;
    assert_eq!(not_object.code(), "missing_input");

    // 401
    for k in ["", "pc_live_x", "garbage"] {
        let a = s
            .send(post(r#"{"input": "x"}"#, Some("application/json"), k))
            .await;
        assert_eq!(
            (a.status, a.code()),
            (StatusCode::UNAUTHORIZED, "unauthorized")
        );
    }
    let no_header = s.send(s.http.post(&url).json(&json!({"input": "x"}))).await;
    assert_eq!(no_header.status, StatusCode::UNAUTHORIZED);

    // 404: malformed id, unknown id, other account, unpublished
    let (_, other) = s.account(None).await;
    let draft = s.post("/v1/workflows", &key, &template_workflow()).await;
    let draft_id = draft.body["id"].as_str().expect("id").to_string();
    for (k, wid) in [
        (&key, "not-a-uuid".to_string()),
        (&key, uuid::Uuid::now_v7().to_string()),
        (&other, id.clone()),
        (&key, draft_id),
    ] {
        let a = s.invoke(k, &wid, json!("x")).await;
        assert_eq!(
            (a.status, a.code()),
            (StatusCode::NOT_FOUND, "workflow_not_found"),
            "{wid}"
        );
    }

    // 413
    let big = format!(r#"{{"input": "{}"}}"#, "x".repeat(3000));
    let too_large = s
        .send(
            s.http
                .post(&url)
                .header("x-api-key", &key)
                .header("content-type", "application/json")
                .body(big),
        )
        .await;
    assert_eq!(
        (too_large.status, too_large.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );

    // 415
    let text = s
        .send(post(r#"{"input": "x"}"#, Some("text/plain"), &key))
        .await;
    assert_eq!(
        (text.status, text.code()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    );
    let none = s.send(post(r#"{"input": "x"}"#, None, &key)).await;
    assert_eq!(none.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // None of the refused requests counted: one accepted run so far.
    let runs = s.get(&format!("/v1/workflows/{id}/runs"), &key).await;
    assert_eq!(runs.body["runs"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn monthly_limit_answers_429_with_details() {
    let s = TestServer::start("").await;
    let (account, key) = s.account(Some(2)).await;
    let id = s.publish(&key, &template_workflow()).await;
    let first = s.invoke(&key, &id, json!("a")).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(
        first
            .headers
            .get("ratelimit-limit")
            .and_then(|v| v.to_str().ok()),
        Some("2")
    );
    assert_eq!(
        first
            .headers
            .get("ratelimit-remaining")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    assert_eq!(s.invoke(&key, &id, json!("b")).await.status, StatusCode::OK);
    let refused = s.invoke(&key, &id, json!("c")).await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::TOO_MANY_REQUESTS, "run_limit_exceeded")
    );
    assert_eq!(refused.body["error"]["limit"], 2);
    assert_eq!(refused.body["error"]["used"], 2);
    assert!(
        refused.body["error"]["resets_at"]
            .as_str()
            .is_some_and(|t| t.ends_with("T00:00:00Z"))
    );
    let retry: u64 = refused.headers["retry-after"]
        .to_str()
        .ok()
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!(retry > 0);
    for h in ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"] {
        assert!(refused.headers.contains_key(h), "missing {h}");
    }
    // Raising the limit lets runs through again.
    let patched = s
        .send(
            s.http
                .patch(format!("{}/v1/accounts/{account}", s.url))
                .header("x-api-key", common::ADMIN)
                .json(&json!({"monthly_run_limit": 3})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK);
    assert_eq!(s.invoke(&key, &id, json!("d")).await.status, StatusCode::OK);
}

#[tokio::test]
async fn monthly_limit_is_exact_under_concurrency() {
    let s = TestServer::start("").await;
    let (account, key) = s.account(Some(20)).await;
    let id = s.publish(&key, &template_workflow()).await;
    let requests = (0..40).map(|i| s.invoke(&key, &id, json!(format!("n{i}"))));
    let answers = futures::future::join_all(requests).await;
    let ok = answers
        .iter()
        .filter(|a| a.status == StatusCode::OK)
        .count();
    let limited = answers
        .iter()
        .filter(|a| a.code() == "run_limit_exceeded")
        .count();
    assert_eq!((ok, limited), (20, 20));
    let runs = s
        .get(&format!("/v1/workflows/{id}/runs?limit=100"), &key)
        .await;
    assert_eq!(runs.body["runs"].as_array().map(Vec::len), Some(20));
    let acct = s
        .get(&format!("/v1/accounts/{account}"), common::ADMIN)
        .await;
    assert_eq!(acct.body["runs_this_month"], 20);
}

#[tokio::test]
async fn per_key_rate_limit() {
    let s = TestServer::start("[limits]\nrate_per_key_per_second = 0.001\nrate_burst = 3\n").await;
    let (_, key) = s.account(None).await;
    let (_, other) = s.account(None).await;
    // Account creation used the admin key; the account key's bucket is full.
    let id = s
        .post("/v1/workflows", &key, &template_workflow())
        .await
        .body["id"]
        .as_str()
        .expect("id")
        .to_string();
    s.post(&format!("/v1/workflows/{id}/publish"), &key, &json!({}))
        .await;
    assert_eq!(s.invoke(&key, &id, json!("a")).await.status, StatusCode::OK);
    let limited = s.invoke(&key, &id, json!("b")).await;
    assert_eq!(
        (limited.status, limited.code()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    assert!(limited.headers.contains_key("retry-after"));
    // Another key has its own bucket.
    assert_ne!(
        s.get("/v1/workflows", &other).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn overloaded_when_no_run_slot_is_free() {
    let s = TestServer::start("[limits]\nmax_concurrent_runs = 1\n").await;
    let (account, key) = s.account(None).await;
    let id = s.publish(&key, &template_workflow()).await;
    // Hold the only slot, as a run in flight does.
    let permit = s
        .server
        .state
        .run_slots
        .clone()
        .try_acquire_owned()
        .expect("free slot");
    let busy = s.invoke(&key, &id, json!("x")).await;
    assert_eq!(
        (busy.status, busy.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "overloaded")
    );
    assert!(busy.headers.contains_key("retry-after"));
    drop(permit);
    assert_eq!(s.invoke(&key, &id, json!("x")).await.status, StatusCode::OK);
    // The refused request did not count.
    let acct = s
        .get(&format!("/v1/accounts/{account}"), common::ADMIN)
        .await;
    assert_eq!(acct.body["runs_this_month"], 1);
}
