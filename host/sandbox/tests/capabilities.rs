//! WASI grants nothing: no files, no environment, no sockets. Logs and config are what the host provides.

mod common;

use std::collections::BTreeMap;

use common::{assert_still_healthy, call_with, misbehave, quick_limits, sandbox};
use pipecat_sandbox::{Grant, Limits, LogLevel, LogSource};
use serde_json::Value;

fn json(text: &str) -> Value {
    serde_json::from_str(text).expect("the guest returns JSON")
}

#[tokio::test]
async fn files_cannot_be_read() {
    let sandbox = sandbox(false);
    let plugin = misbehave(&sandbox).await;
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    for path in [manifest, "/etc/passwd", "Cargo.toml"] {
        let outcome = call_with(
            &plugin,
            "read_file",
            &serde_json::json!({ "path": path }).to_string(),
            quick_limits(),
        )
        .await;
        let result = json(&outcome.result.expect("the tool reports the failure"));
        assert!(
            result.get("error").is_some(),
            "reading {path} must fail: {result}"
        );
    }
    assert_still_healthy(&sandbox).await;
}

#[tokio::test]
async fn the_environment_is_empty() {
    let sandbox = sandbox(false);
    let plugin = misbehave(&sandbox).await;
    assert!(std::env::var("PATH").is_ok(), "the host has PATH");
    let outcome = call_with(&plugin, "read_env", r#"{"name":"PATH"}"#, quick_limits()).await;
    let result = json(&outcome.result.expect("the tool reports the failure"));
    assert_eq!(result["error"], "environment variable not found");
    assert_eq!(result["count"], 0);
    assert_still_healthy(&sandbox).await;
}

#[tokio::test]
async fn sockets_cannot_be_opened() {
    let sandbox = sandbox(false);
    let plugin = misbehave(&sandbox).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    let outcome = call_with(
        &plugin,
        "socket",
        &serde_json::json!({ "addr": addr.to_string() }).to_string(),
        quick_limits(),
    )
    .await;
    let result = json(&outcome.result.expect("the tool reports the failure"));
    assert!(
        result.get("error").is_some(),
        "connecting must fail: {result}"
    );
    let accepted = listener.accept();
    assert!(
        accepted
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
        "no connection may reach the listener: {accepted:?}"
    );
    assert_still_healthy(&sandbox).await;
}

#[tokio::test]
async fn log_write_stdout_and_stderr_land_in_the_call_log() {
    let sandbox = sandbox(false);
    let plugin = misbehave(&sandbox).await;
    let outcome = call_with(&plugin, "log", r#"{"lines":2}"#, quick_limits()).await;
    assert_eq!(outcome.result, Ok("logged".to_owned()));
    let lines: Vec<(LogSource, LogLevel, &str)> = outcome
        .logs
        .iter()
        .map(|l| (l.source, l.level, l.message.as_str()))
        .collect();
    assert!(
        lines.contains(&(LogSource::Plugin, LogLevel::Info, "log line 0")),
        "{lines:?}"
    );
    assert!(
        lines.contains(&(LogSource::Stdout, LogLevel::Info, "stdout line 1")),
        "{lines:?}"
    );
    assert!(
        lines.contains(&(LogSource::Stderr, LogLevel::Warn, "stderr line 1")),
        "{lines:?}"
    );
    assert_eq!(lines.len(), 6);
}

#[tokio::test]
async fn the_log_is_bounded_and_says_so() {
    let sandbox = sandbox(false);
    let plugin = misbehave(&sandbox).await;
    let limits = Limits {
        max_log_bytes: 1000,
        ..quick_limits()
    };
    let outcome = call_with(&plugin, "log", r#"{"lines":10000}"#, limits).await;
    assert_eq!(outcome.result, Ok("logged".to_owned()));
    let kept: usize = outcome
        .logs
        .iter()
        .filter(|l| l.source != LogSource::Host)
        .map(|l| l.message.len())
        .sum();
    assert!(kept <= 1000, "kept {kept} bytes");
    let last = outcome.logs.last().expect("a truncation notice");
    assert_eq!(last.source, LogSource::Host);
    assert!(
        last.message.starts_with("log truncated"),
        "{}",
        last.message
    );
}

#[tokio::test]
async fn config_grants_are_visible_through_config_get_and_get_all() {
    let sandbox = sandbox(false);
    let plugin = misbehave(&sandbox).await;
    let grant = Grant {
        config: BTreeMap::from([
            ("base_url".to_owned(), "https://api.example.com".to_owned()),
            ("units".to_owned(), "metric".to_owned()),
        ]),
        ..Grant::default()
    };
    let outcome = plugin.call("config", r#"{"key":"units"}"#, &grant).await;
    let result = json(&outcome.result.expect("config tool"));
    assert_eq!(result["get"], "metric");
    assert_eq!(
        result["all"],
        serde_json::json!({"base_url": "https://api.example.com", "units": "metric"})
    );

    let outcome = plugin
        .call("config", r#"{"key":"units"}"#, &Grant::default())
        .await;
    let result = json(&outcome.result.expect("config tool"));
    assert_eq!(result["get"], Value::Null);
    assert_eq!(result["all"], serde_json::json!({}));
}
