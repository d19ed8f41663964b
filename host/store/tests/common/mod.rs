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
