//! Shared helpers of the sandbox host tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use pipecat_sandbox::{CallOutcome, Grant, Limits, Plugin, Sandbox, SandboxConfig};

/// One compile cache for the whole test binary, so each test does not recompile the guests.
fn cache_dir() -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
        .path()
        .to_path_buf()
}

/// A sandbox with a small pool; `allow_private` lets HTTP reach loopback servers.
pub fn sandbox(allow_private: bool) -> Sandbox {
    Sandbox::new(SandboxConfig {
        cache_dir: Some(cache_dir()),
        allow_private_networks: allow_private,
        max_concurrent_instances: 16,
        ..SandboxConfig::default()
    })
    .expect("sandbox")
}

/// Loads a guest component from its path constant.
pub async fn load(sandbox: &Sandbox, path: &str) -> Arc<Plugin> {
    let bytes = std::fs::read(path).expect("guest component built by pipecat-test-components");
    sandbox.load(&bytes).await.expect("guest loads")
}

/// The misbehaving guest.
pub async fn misbehave(sandbox: &Sandbox) -> Arc<Plugin> {
    load(sandbox, pipecat_test_components::SANDBOX_GUEST).await
}

/// Calls a tool of the misbehaving guest with `limits`.
pub async fn call_with(plugin: &Plugin, tool: &str, args: &str, limits: Limits) -> CallOutcome {
    plugin
        .call(
            tool,
            args,
            &Grant {
                limits: Some(limits),
                ..Grant::default()
            },
        )
        .await
}

/// Limits small enough to keep the tests quick.
pub fn quick_limits() -> Limits {
    Limits {
        timeout: Duration::from_secs(30),
        ..Limits::default()
    }
}

/// Asserts that another plugin, and the host, still work normally after a misbehaving call.
pub async fn assert_still_healthy(sandbox: &Sandbox) {
    let echo = load(sandbox, pipecat_test_components::ECHO_GUEST).await;
    let outcome = echo
        .call("echo", r#"{"text":"still fine"}"#, &Grant::default())
        .await;
    assert_eq!(outcome.result, Ok(r#"{"text":"still fine"}"#.to_owned()));
}

/// The error code of a failed call.
pub fn code(outcome: &CallOutcome) -> &'static str {
    match &outcome.result {
        Ok(text) => panic!("expected an error, got {text:?}"),
        Err(error) => error.code(),
    }
}
