//! Helpers shared by the store tests.
#![allow(dead_code)]

use std::collections::BTreeMap;

use pipecat_store::{Account, ApiKey, KeyHash, RunRecord, RunStatus, SledStore, Workflow};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

pub fn now() -> OffsetDateTime {
    // RFC 3339 round trips keep nanoseconds; truncate anyway so comparisons are simple.
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(0).unwrap_or(t)
}

pub fn open_temp() -> (tempfile::TempDir, SledStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SledStore::open(dir.path().join("data")).expect("open store");
    (dir, store)
}

pub fn account(name: &str) -> Account {
    Account {
        id: Uuid::now_v7(),
        name: name.into(),
        plan: "free".into(),
        monthly_run_limit: Some(1000),
        created_at: now(),
    }
}

pub fn api_key(account_id: Uuid, secret: &str) -> ApiKey {
    ApiKey {
        id: Uuid::now_v7(),
        account_id,
        name: "ci".into(),
        prefix: secret.chars().take(8).collect(),
        hash: KeyHash::of(secret),
        created_at: now(),
        revoked_at: None,
    }
}

pub fn workflow(account_id: Uuid, name: &str) -> Workflow {
    Workflow {
        id: Uuid::now_v7(),
        account_id,
        name: name.into(),
        draft: json!({"name": name, "nodes": []}),
        published_version: None,
        created_at: now(),
        updated_at: now(),
    }
}

pub fn run(account_id: Uuid, workflow_id: Uuid, status: RunStatus) -> RunRecord {
    let run_id = Uuid::now_v7();
    RunRecord {
        run_id,
        account_id,
        workflow_id,
        version: 1,
        status,
        started_at: now(),
        record: json!({"run_id": run_id, "status": status.as_str(), "output": "hi", "nodes": []}),
    }
}

pub fn pins(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Far over any stall limit the tests set (1 s): only a hang takes this long.
pub const HANG: std::time::Duration = std::time::Duration::from_secs(20);

/// `f`, or a panic naming `what` when it takes [`HANG`].
pub async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(HANG, f)
        .await
        .unwrap_or_else(|_| panic!("{what} hung"))
}

/// Asserts a `Stalled` error with a message an operator can act on.
#[track_caller]
pub fn assert_stalled<T: std::fmt::Debug>(
    what: &str,
    result: Result<T, pipecat_store::StoreError>,
) {
    match result {
        Err(e @ pipecat_store::StoreError::Stalled { .. }) => {
            assert!(e.is_stalled());
            let msg = e.to_string();
            assert!(
                msg.contains("have not completed") && msg.contains("restart the server"),
                "{what}: {msg}"
            );
        }
        other => panic!("{what}: expected Stalled, got {other:?}"),
    }
}

/// Drops the store on a plain thread (not `spawn_blocking`: the runtime would wait for a hung close at
/// its own drop) and fails if that does not return within [`HANG`].
pub fn close_within(store: SledStore) {
    let (closed, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(store);
        let _ = closed.send(());
    });
    done.recv_timeout(HANG).expect("closing the store hung");
}

/// In a child process a test started with `env` set to a directory: that directory and a runtime with two
/// workers to run the child's part in. `None` when the test binary runs normally.
pub fn child_process(env: &str) -> Option<(String, tokio::runtime::Runtime)> {
    let dir = std::env::var(env).ok()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    Some((dir, rt))
}
