//! Run-insert throughput: group commit vs. one flush per write, at several concurrency levels.
//!
//! `cargo bench -p pipecat-store --bench run_insert` prints one line per case. Each case writes `total`
//! runs from `tasks` concurrent tasks into a fresh store; every `put_run` returns only once durable.
//! `RUN_INSERT_ONLY=GroupCommit` (or `FlushEachWrite`) runs one mode, e.g. under `strace -f -c`.

use std::sync::Arc;
use std::time::Instant;

use pipecat_store::{Durability, RunRecord, RunStatus, SledStore, Store};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

fn run(account_id: Uuid, workflow_id: Uuid) -> RunRecord {
    let run_id = Uuid::now_v7();
    RunRecord {
        run_id,
        account_id,
        workflow_id,
        version: 1,
        status: RunStatus::Success,
        started_at: OffsetDateTime::now_utc(),
        record: json!({
            "run_id": run_id, "status": "success", "input": "What is the weather in Tokyo?",
            "output": "It is sunny and 22°C in Tokyo.",
            "tool_calls": [{"node_id": "llm", "tool": "get_weather", "input": {"location": "Tokyo"},
                            "result": "{\"temperature\": 22, \"condition\": \"Sunny\"}"}],
            "nodes": [{"node_id": "llm", "type": "llm", "status": "success", "offset_ms": 0, "duration_ms": 812}],
            "usage": {"input_tokens": 120, "output_tokens": 30}, "duration_ms": 815
        }),
    }
}

async fn case(durability: Durability, tasks: usize, total: usize) -> (f64, u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SledStore::open_with(dir.path().join("data"), durability).expect("open"));
    let (acct, wf) = (Uuid::now_v7(), Uuid::now_v7());
    let per_task = total / tasks;
    let flushes_before = store.flush_count();
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                for _ in 0..per_task {
                    store.put_run(&run(acct, wf)).await.expect("put_run");
                }
            })
        })
        .collect();
    for h in handles {
        h.await.expect("task");
    }
    let secs = start.elapsed().as_secs_f64();
    (
        (per_task * tasks) as f64 / secs,
        store.flush_count() - flushes_before,
    )
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let only = std::env::var("RUN_INSERT_ONLY").ok();
    println!("| mode | concurrent writers | runs | runs/s | fsync rounds (group commit) |");
    println!("|---|---|---|---|---|");
    for (tasks, total) in [(1, 500), (16, 2000), (100, 5000)] {
        for durability in [Durability::GroupCommit, Durability::FlushEachWrite] {
            // RUN_INSERT_ONLY=GroupCommit|FlushEachWrite runs one mode (e.g. under `strace -c`).
            if only
                .as_deref()
                .is_some_and(|o| o != format!("{durability:?}"))
            {
                continue;
            }
            let (rate, flushes) = rt.block_on(case(durability, tasks, total));
            let flushes = match durability {
                Durability::GroupCommit => flushes.to_string(),
                Durability::FlushEachWrite => "n/a (one flush per write)".to_owned(),
            };
            println!("| {durability:?} | {tasks} | {total} | {rate:.0} | {flushes} |");
        }
    }
    if only.is_none() {
        rt.block_on(reopen(20_000));
    }
}

/// Open time of a store holding `total` runs (open verifies the whole store against its checksum).
async fn reopen(total: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("data");
    {
        let store = Arc::new(SledStore::open(&path).expect("open"));
        let (acct, wf) = (Uuid::now_v7(), Uuid::now_v7());
        let handles: Vec<_> = (0..100)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    for _ in 0..total / 100 {
                        store.put_run(&run(acct, wf)).await.expect("put_run");
                    }
                })
            })
            .collect();
        for h in handles {
            h.await.expect("task");
        }
    }
    let start = Instant::now();
    let store = SledStore::open(&path).expect("reopen");
    let opened = start.elapsed();
    let size = store.size_on_disk().await.expect("size");
    println!();
    println!(
        "reopen of a store with {total} runs ({:.1} MiB on disk): {:.0} ms",
        size as f64 / (1024.0 * 1024.0),
        opened.as_secs_f64() * 1000.0
    );
}
