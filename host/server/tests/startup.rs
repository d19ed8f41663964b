//! Start-up: the generated admin key, the data-directory lock, and `--with-examples`.

use pipecat::{FileConfig, ServeConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn admin_key_is_generated_once_and_remembered() {
    let dir = tempfile::tempdir().expect("dir");
    let config = ServeConfig::for_data_dir(dir.path());
    let first = pipecat::start_with(&config, FileConfig::default())
        .await
        .expect("start");
    let key = first
        .generated_admin_key
        .clone()
        .expect("a generated admin key");
    assert!(key.starts_with("pc_admin_"));
    let http = reqwest::Client::new();
    let ok = http
        .get(format!("{}/v1/accounts", first.url()))
        .header("x-api-key", &key)
        .send()
        .await
        .expect("get");
    assert_eq!(ok.status(), StatusCode::OK);

    // A second server on the same directory is refused while the first runs.
    let locked = pipecat::start_with(&config, FileConfig::default()).await;
    let message = format!("{:#}", locked.err().expect("second start refused"));
    assert!(message.contains("locked"), "{message}");

    first.shutdown();
    first.wait().await.expect("clean stop");
    let second = pipecat::start_with(&config, FileConfig::default())
        .await
        .expect("restart");
    assert!(
        second.generated_admin_key.is_none(),
        "a new admin key was generated on restart"
    );
    let ok = http
        .get(format!("{}/v1/accounts", second.url()))
        .header("x-api-key", &key)
        .send()
        .await
        .expect("get");
    assert_eq!(ok.status(), StatusCode::OK);
}

#[tokio::test]
async fn with_examples_publishes_callable_workflows() {
    let dir = tempfile::tempdir().expect("dir");
    let mut config = ServeConfig::for_data_dir(dir.path());
    config.with_examples = true;
    config.admin_key = Some("admin".into());
    let server = pipecat::start_with(&config, FileConfig::default())
        .await
        .expect("start");
    let demo = server.demo.clone().expect("demo seeded");
    let calculator = demo
        .workflows
        .get("calculator")
        .expect("calculator example published");
    let http = reqwest::Client::new();
    let run: Value = http
        .post(format!("{}/invoke/{calculator}/invoke", server.url()))
        .header("x-api-key", &demo.api_key)
        .json(&json!({"input": "6 * 7"}))
        .send()
        .await
        .expect("invoke")
        .json()
        .await
        .expect("json");
    assert_eq!(run["status"], "success", "{run:#}");
    assert!(
        run["output"].as_str().is_some_and(|o| o.contains("42")),
        "{run:#}"
    );
    let plugins: Value = http
        .get(format!("{}/v1/plugins", server.url()))
        .header("x-api-key", &demo.api_key)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(
        plugins["plugins"].as_array().map(Vec::len),
        Some(pipecat_plugins::SHIPPED.len())
    );
}
