//! Guests that exhaust a limit get a typed outcome, and the sandbox keeps working afterwards.

mod common;

use std::time::Duration;

use common::{assert_still_healthy, call_with, code, misbehave, quick_limits, sandbox};
use pipecat_sandbox::{CallError, Limits};

#[tokio::test]
async fn an_infinite_loop_runs_out_of_fuel() {
    let sandbox = sandbox(false);
    let plugin = misbehave(&sandbox).await;
    let outcome = call_with(
        &plugin,
        "spin",
        "{}",
        Limits {
            fuel: 50_000_000,
            ..quick_limits()
        },
    )
    .await;
    assert_eq!(code(&outcome), "out_of_fuel");
    assert!(
        outcome.fuel_consumed >= 50_000_000 - 10_000,
        "fuel used: {}",
        outcome.fuel_consumed
    );
    assert_still_healthy(&sandbox).await;
}

#[tokio::test]
async fn an_infinite_loop_with_plenty_of_fuel_times_out() {
    let sandbox = sandbox(false);
    let plugin = misbehave(&sandbox).await;
    let limits = Limits {
        fuel: u64::MAX / 2,
        timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let outcome = call_with(&plugin, "spin", "{}", limits).await;
    assert_eq!(outcome.result, Err(CallError::Timeout));
    assert_still_healthy(&sandbox).await;
}

#[tokio::test]
async fn a_spinning_guest_times_out_after_the_idle_epoch_ticker_went_to_sleep() {
    let sandbox = sandbox(false);
    let plugin = misbehave(&sandbox).await;
    // The ticker sleeps after 100 idle ticks (100 ms); the call must wake it, or the guest never yields.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let limits = Limits {
        fuel: u64::MAX / 2,
        timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let started = std::time::Instant::now();
    let outcome = call_with(&plugin, "spin", "{}", limits).await;
    assert_eq!(outcome.result, Err(CallError::Timeout));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_still_healthy(&sandbox).await;
}

#[tokio::test]
async fn a_memory_hog_hits_the_memory_limit() {
    let sandbox = sandbox(false);
    let plugin = misbehave(&sandbox).await;
    let outcome = call_with(&plugin, "hog", "{}", quick_limits()).await;
    assert_eq!(outcome.result, Err(CallError::MemoryLimit));
    assert_still_healthy(&sandbox).await;
}

#[tokio::test]
async fn unbounded_recursion_overflows_the_stack() {
    let sandbox = sandbox(false);
    let plugin = misbehave(&sandbox).await;
    let outcome = call_with(&plugin, "recurse", "{}", quick_limits()).await;
    assert_eq!(outcome.result, Err(CallError::StackOverflow));
    assert_still_healthy(&sandbox).await;
}

#[tokio::test]
async fn a_100_mb_result_is_refused_as_too_large() {
    let sandbox = sandbox(false);
    let plugin = misbehave(&sandbox).await;
    // Memory is raised so the guest can build the string: the output cap is what must stop it.
    let limits = Limits {
        memory_bytes: 512 << 20,
        ..quick_limits()
    };
    let outcome = call_with(&plugin, "big_output", r#"{"bytes":100000000}"#, limits).await;
    assert_eq!(
        outcome.result,
        Err(CallError::OutputTooLarge {
            size: 100_000_000,
            max: 1 << 20
        })
    );
    assert_still_healthy(&sandbox).await;
}

#[tokio::test]
async fn a_100_mb_result_under_default_limits_hits_the_memory_limit_first() {
    let sandbox = sandbox(false);
    let plugin = misbehave(&sandbox).await;
    let outcome = call_with(
        &plugin,
        "big_output",
        r#"{"bytes":100000000}"#,
        quick_limits(),
    )
    .await;
    assert_eq!(outcome.result, Err(CallError::MemoryLimit));
    assert_still_healthy(&sandbox).await;
}

#[tokio::test]
async fn a_panic_is_a_trap_carrying_the_panic_message() {
    let sandbox = sandbox(false);
    let plugin = misbehave(&sandbox).await;
    let outcome = call_with(&plugin, "panic", "{}", quick_limits()).await;
    match &outcome.result {
        Err(CallError::Trap { message }) => {
            assert!(
                message.contains("guest panicked on purpose"),
                "message: {message}"
            )
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    assert_eq!(code(&outcome), "trap");
    assert_still_healthy(&sandbox).await;
}

#[tokio::test]
async fn invalid_json_from_a_tool_is_returned_as_text_for_the_engine_to_judge() {
    let sandbox = sandbox(false);
    let plugin = misbehave(&sandbox).await;
    let outcome = call_with(&plugin, "bad_json", "{}", quick_limits()).await;
    assert_eq!(outcome.result, Ok("this is {not json".to_owned()));
    assert_still_healthy(&sandbox).await;
}

#[tokio::test]
async fn the_same_plugin_works_again_after_it_misbehaved() {
    let sandbox = sandbox(false);
    let plugin = misbehave(&sandbox).await;
    let outcome = call_with(&plugin, "hog", "{}", quick_limits()).await;
    assert_eq!(outcome.result, Err(CallError::MemoryLimit));
    let outcome = call_with(&plugin, "bad_json", "{}", quick_limits()).await;
    assert_eq!(outcome.result, Ok("this is {not json".to_owned()));
}

#[tokio::test(flavor = "current_thread")]
async fn a_spinning_guest_does_not_block_the_runtime_and_stops_when_dropped() {
    let sandbox = std::sync::Arc::new(sandbox(false));
    let plugin = misbehave(&sandbox).await;
    let limits = Limits {
        fuel: u64::MAX / 2,
        timeout: Duration::from_secs(3600),
        ..Limits::default()
    };
    let spinning = tokio::spawn({
        let plugin = plugin.clone();
        async move { call_with(&plugin, "spin", "{}", limits).await }
    });
    // On a single-threaded runtime this only completes if the spinning guest yields.
    assert_still_healthy(&sandbox).await;
    assert!(!spinning.is_finished());
    spinning.abort();
    let joined = spinning.await;
    assert!(joined.is_err_and(|e| e.is_cancelled()));
    assert_still_healthy(&sandbox).await;
}

#[tokio::test]
async fn every_call_starts_from_fresh_memory() {
    let sandbox = sandbox(false);
    let plugin = misbehave(&sandbox).await;
    // 2 MiB of heap stays inside the part of a pool slot kept resident (reset in place), 6 MiB reaches past
    // it (returned to the kernel); both must read as zero in the next call, as must the static area.
    for bytes in [2u64 << 20, 6 << 20, 2 << 20, 6 << 20] {
        let outcome = call_with(
            &plugin,
            "scratch",
            &format!(r#"{{"bytes":{bytes}}}"#),
            quick_limits(),
        )
        .await;
        let found: serde_json::Value =
            serde_json::from_str(&outcome.result.expect("the call succeeds")).unwrap();
        assert_eq!(
            found,
            serde_json::json!({"calls": 1, "dirty_static": 0, "dirty_heap": 0}),
            "a call with {bytes} bytes of heap saw what an earlier call left"
        );
    }
}
