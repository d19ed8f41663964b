//! Loading: bad bytes are refused with a typed error, tools are listed, the compile cache is used.

mod common;

use common::{load, sandbox};
use pipecat_sandbox::{CallError, Grant, LoadError, Sandbox, SandboxConfig};

#[tokio::test]
async fn garbage_a_core_module_and_another_world_are_refused() {
    let sandbox = sandbox(false);
    let garbage = sandbox
        .load(b"definitely not wasm")
        .await
        .expect_err("garbage");
    assert_eq!(garbage.code(), "not_wasm");
    let core = sandbox
        .load(b"\0asm\x01\0\0\0")
        .await
        .expect_err("core module");
    assert_eq!(core, LoadError::CoreModule);
    assert_eq!(core.code(), "core_module");
    let mut truncated = std::fs::read(pipecat_test_components::ECHO_GUEST).expect("echo guest");
    truncated.truncate(truncated.len() / 2);
    assert_eq!(
        sandbox
            .load(&truncated)
            .await
            .expect_err("truncated")
            .code(),
        "invalid_component"
    );
    let other =
        std::fs::read(pipecat_test_components::OTHER_WORLD_GUEST).expect("other world guest");
    let wrong = sandbox.load(&other).await.expect_err("wrong world");
    assert_eq!(wrong.code(), "wrong_world", "{wrong}");
    common::assert_still_healthy(&sandbox).await;
}

#[tokio::test]
async fn oversized_components_are_refused_before_compiling() {
    let sandbox = Sandbox::new(SandboxConfig {
        max_component_bytes: 1000,
        ..SandboxConfig::default()
    })
    .expect("sandbox");
    let bytes = std::fs::read(pipecat_test_components::ECHO_GUEST).expect("echo guest");
    let error = sandbox.load(&bytes).await.expect_err("too large");
    assert_eq!(
        error,
        LoadError::TooLarge {
            size: bytes.len(),
            max: 1000
        }
    );
}

#[tokio::test]
async fn tools_are_listed_and_plugins_found_by_id() {
    let sandbox = sandbox(false);
    let echo = load(&sandbox, pipecat_test_components::ECHO_GUEST).await;
    let names: Vec<&str> = echo.tools().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["echo", "fail"]);
    assert_eq!(
        echo.tools()[0].parameters["required"],
        serde_json::json!(["text"])
    );
    let bytes = std::fs::read(pipecat_test_components::ECHO_GUEST).expect("echo guest");
    assert_eq!(echo.id(), blake3::hash(&bytes).to_hex().as_str());
    assert!(
        sandbox
            .get(echo.id())
            .is_some_and(|p| std::sync::Arc::ptr_eq(&p, &echo))
    );
    assert!(sandbox.unload(echo.id()));
    assert!(sandbox.get(echo.id()).is_none());
}

#[tokio::test]
async fn calls_report_unknown_tools_bad_arguments_and_tool_failures() {
    let sandbox = sandbox(false);
    let echo = load(&sandbox, pipecat_test_components::ECHO_GUEST).await;
    let grant = Grant::default();
    assert_eq!(
        echo.call("nope", "{}", &grant).await.result,
        Err(CallError::UnknownTool("nope".into()))
    );
    assert_eq!(
        echo.call("echo", "not json", &grant)
            .await
            .result
            .map_err(|e| e.code()),
        Err("invalid_arguments")
    );
    assert_eq!(
        echo.call("echo", "[1]", &grant)
            .await
            .result
            .map_err(|e| e.code()),
        Err("invalid_arguments")
    );
    assert_eq!(
        echo.call("echo", r#"{"text":1}"#, &grant).await.result,
        Err(CallError::InvalidArguments(
            "`text` must be a string".into()
        ))
    );
    assert_eq!(
        echo.call("fail", r#"{"reason":"no luck"}"#, &grant)
            .await
            .result,
        Err(CallError::Failed("no luck".into()))
    );
    let ok = echo.call("echo", r#"{"text":"hi"}"#, &grant).await;
    assert_eq!(ok.result, Ok(r#"{"text":"hi"}"#.into()));
    assert!(ok.fuel_consumed > 0);
}

#[tokio::test]
async fn a_second_sandbox_with_the_same_cache_dir_loads_from_the_cache() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = SandboxConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        ..SandboxConfig::default()
    };
    let bytes = std::fs::read(pipecat_test_components::ECHO_GUEST).expect("echo guest");
    let first = Sandbox::new(config.clone()).expect("sandbox");
    let compiled = first.load(&bytes).await.expect("compiles");
    assert!(!compiled.cache_hit());
    let entries = std::fs::read_dir(dir.path()).expect("cache dir").count();
    assert_eq!(entries, 1);
    let second = Sandbox::new(config).expect("sandbox");
    let cached = second.load(&bytes).await.expect("loads from cache");
    assert!(cached.cache_hit());
    let outcome = cached
        .call("echo", r#"{"text":"cached"}"#, &Grant::default())
        .await;
    assert_eq!(outcome.result, Ok(r#"{"text":"cached"}"#.into()));
}

#[tokio::test]
async fn pool_info_reports_the_allocator() {
    let sandbox = sandbox(false);
    let info = sandbox.pool_info();
    assert_eq!(info.pooling, info.max_concurrent_instances.is_some());
    assert_eq!(info.pooling, info.fallback_reason.is_none());
    let off = Sandbox::new(SandboxConfig {
        pooling: false,
        ..SandboxConfig::default()
    })
    .expect("sandbox");
    assert!(!off.pool_info().pooling);
    assert_eq!(off.pool_info().fallback_reason, None);
}
