//! Run events and idempotency keys: account scoping, exactly one winner among concurrent claims, expiry.

mod common;

use std::sync::Arc;

use common::*;
use pipecat_store::{IdempotencyEntry, Store};
use serde_json::json;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

fn entry(fingerprint: &str, created_at: OffsetDateTime) -> IdempotencyEntry {
    IdempotencyEntry {
        fingerprint: fingerprint.into(),
        created_at,
        run_id: None,
        status: None,
        body: None,
    }
}

#[tokio::test]
async fn run_events_round_trip_per_account() {
    let (_dir, store) = open_temp();
    let (acct, other, run_id) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let events = vec![
        json!({"type": "run_started", "seq": 1}),
        json!({"type": "run_finished", "seq": 2}),
    ];
    store.put_run_events(acct, run_id, &events).await.unwrap();
    assert_eq!(
        store.get_run_events(acct, run_id).await.unwrap(),
        Some(events)
    );
    assert_eq!(store.get_run_events(other, run_id).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_of_one_key_have_one_winner() {
    let (_dir, store) = open_temp();
    let store: Arc<dyn Store> = Arc::new(store);
    let acct = Uuid::now_v7();
    let now = OffsetDateTime::now_utc();
    let claims = futures_join(store.clone(), acct, now).await;
    assert_eq!(claims.iter().filter(|c| c.is_none()).count(), 1);
    assert!(claims.iter().flatten().all(|e| e.fingerprint == "f"));

    // Completed, replaced by a later put; another account's key is separate.
    let mut done = entry("f", now);
    done.status = Some(200);
    done.body = Some(json!({"ok": true}));
    store.put_idempotency_key(acct, "k", &done).await.unwrap();
    let again = store
        .claim_idempotency_key(acct, "k", &entry("f", now), now - Duration::hours(24))
        .await
        .unwrap();
    assert_eq!(again, Some(done));
    assert_eq!(
        store
            .claim_idempotency_key(
                Uuid::now_v7(),
                "k",
                &entry("g", now),
                now - Duration::hours(24)
            )
            .await
            .unwrap(),
        None
    );

    // An expired entry is replaced; a deleted one is free; purge removes old ones.
    let later = now + Duration::hours(25);
    assert_eq!(
        store
            .claim_idempotency_key(acct, "k", &entry("new", later), later - Duration::hours(24))
            .await
            .unwrap(),
        None
    );
    store.delete_idempotency_key(acct, "k").await.unwrap();
    assert_eq!(
        store
            .claim_idempotency_key(acct, "k", &entry("x", now), now - Duration::hours(24))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .purge_idempotency_keys(now + Duration::seconds(1))
            .await
            .unwrap(),
        2
    );
}

async fn futures_join(
    store: Arc<dyn Store>,
    acct: Uuid,
    now: OffsetDateTime,
) -> Vec<Option<IdempotencyEntry>> {
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .claim_idempotency_key(acct, "k", &entry("f", now), now - Duration::hours(24))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}
