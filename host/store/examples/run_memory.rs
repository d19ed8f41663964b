//! Resident memory of the store alone while it records runs (issue #8), without the HTTP server:
//!
//! ```sh
//! # N runs (default 1,000,000) from 32 tasks, as the server writes them for a template run
//! # (reserve_run, then put_run); prints resident memory and store size every 100,000 runs,
//! # then again after closing and reopening the store.
//! cargo run --release -p pipecat-store --example run_memory -- 1000000
//! ```
//!
//! `RUN_MEMORY_TRIM=1` calls glibc's `malloc_trim(0)` before each reading, which tells memory freed but
//! kept by the allocator from memory still in use. `RUN_MEMORY_EXIT=1` exits right after the last
//! reading without closing the store, `RUN_MEMORY_EXIT=reopened` after reopening it (under `heaptrack`, the
//! leak list is then what was live at that point).

use std::sync::Arc;
use std::time::Instant;

#[path = "../../server/examples/common/mod.rs"]
mod common;

use common::{dir_bytes, rss_mib};
use pipecat_store::{RunRecord, RunStatus, SledStore, Store};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

const TASKS: u64 = 32;
const STEP: u64 = 100_000;

/// A record shaped like the server's for a one-node template run.
fn record(account_id: Uuid, workflow_id: Uuid) -> RunRecord {
    let run_id = Uuid::now_v7();
    let started_at = OffsetDateTime::now_utc();
    RunRecord {
        run_id,
        account_id,
        workflow_id,
        version: 1,
        status: RunStatus::Success,
        started_at,
        record: json!({
            "run_id": run_id, "workflow_id": workflow_id, "version": 1, "status": "success",
            "input": "world", "output": "Hello, world!", "error": null, "tool_calls": [],
            "nodes": [{"node_id": "r", "type": "template", "status": "success", "offset_ms": 0,
                       "duration_ms": 0, "output": "Hello, world!"}],
            "usage": null, "started_at": "2026-12-05T09:00:00.123456789Z", "duration_ms": 0
        }),
    }
}

/// Resident MiB, after `malloc_trim` when `RUN_MEMORY_TRIM` is set.
fn resident() -> f64 {
    common::trim_if("RUN_MEMORY_TRIM");
    rss_mib()
}

#[tokio::main]
async fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let store = Arc::new(SledStore::open(&dir).expect("open"));
    let (account, workflow) = (Uuid::now_v7(), Uuid::now_v7());
    let empty = dir_bytes(&dir);
    println!("opened: resident {:.0} MiB", resident());
    let started = Instant::now();
    let mut done = 0;
    while done < n {
        let batch = (n - done).min(STEP);
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                let store = Arc::clone(&store);
                let share = batch / TASKS + u64::from(t < batch % TASKS);
                tokio::spawn(async move {
                    for _ in 0..share {
                        store
                            .reserve_run(account, "2026-12", u64::MAX)
                            .await
                            .expect("reserve_run");
                        store
                            .put_run(&record(account, workflow))
                            .await
                            .expect("put_run");
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("task");
        }
        done += batch;
        println!(
            "{done} runs in {:.0} s: resident {:.0} MiB, store {:.1} MiB",
            started.elapsed().as_secs_f64(),
            resident(),
            dir_bytes(&dir) as f64 / 1048576.0
        );
    }
    let grown = dir_bytes(&dir).saturating_sub(empty);
    println!(
        "after {n} runs: resident {:.0} MiB, store growth {:.0} bytes per run",
        resident(),
        grown as f64 / n.max(1) as f64
    );
    let exit = std::env::var("RUN_MEMORY_EXIT").ok();
    if exit.as_deref() == Some("1") {
        // Leaves everything allocated, so a heap profiler's "leaked" list is what was live here (the
        // files go: the open store keeps only its handles).
        let _ = std::fs::remove_dir_all(tmp.path());
        std::process::exit(0);
    }
    drop(store);
    println!("closed: resident {:.0} MiB", resident());
    let reopened = Instant::now();
    let store = SledStore::open(&dir).expect("reopen");
    println!(
        "reopened in {:.1} s: resident {:.0} MiB",
        reopened.elapsed().as_secs_f64(),
        resident()
    );
    if exit.is_some() {
        let _ = std::fs::remove_dir_all(tmp.path());
        std::process::exit(0);
    }
    drop(store);
}
