//! The read-through cache in front of the sled store: every write the invocation path depends on is seen
//! by the next read (revocations, account changes, publishes, deletes), and a cached read answers the same
//! as the store underneath.

mod common;

use std::sync::Arc;

use common::{account, api_key, now, open_temp, workflow};
use pipecat_store::{CachedStore, KeyHash, Published, Store};
use serde_json::json;

fn cached() -> (tempfile::TempDir, CachedStore) {
    let (dir, store) = open_temp();
    (dir, CachedStore::new(Arc::new(store)))
}

#[tokio::test]
async fn a_revoked_key_is_seen_revoked_by_the_next_lookup() {
    let (_dir, store) = cached();
    let acct = account("a");
    store.create_account(&acct).await.unwrap();
    let key = api_key(acct.id, "pk_live_secret");
    store.create_api_key(&key).await.unwrap();
    let hash = KeyHash::of("pk_live_secret");
    // Two lookups: the second one is answered by the cache.
    for _ in 0..2 {
        let found = store.api_key_by_hash(&hash).await.unwrap().unwrap();
        assert_eq!(found.id, key.id);
        assert!(found.revoked_at.is_none());
    }
    store.revoke_api_key(key.id, now()).await.unwrap();
    let found = store.api_key_by_hash(&hash).await.unwrap().unwrap();
    assert!(
        found.revoked_at.is_some(),
        "a revoked key must not stay live in the cache"
    );
}

#[tokio::test]
async fn unknown_keys_are_not_remembered_as_missing() {
    let (_dir, store) = cached();
    let acct = account("a");
    store.create_account(&acct).await.unwrap();
    let hash = KeyHash::of("pk_live_later");
    assert!(store.api_key_by_hash(&hash).await.unwrap().is_none());
    store
        .create_api_key(&api_key(acct.id, "pk_live_later"))
        .await
        .unwrap();
    assert!(store.api_key_by_hash(&hash).await.unwrap().is_some());
}

#[tokio::test]
async fn an_account_change_is_seen_by_the_next_lookup() {
    let (_dir, store) = cached();
    let mut acct = account("a");
    store.create_account(&acct).await.unwrap();
    assert_eq!(
        store
            .get_account(acct.id)
            .await
            .unwrap()
            .unwrap()
            .monthly_run_limit,
        Some(1000)
    );
    acct.monthly_run_limit = Some(5);
    acct.plan = "pro".into();
    assert!(store.update_account(&acct).await.unwrap());
    let found = store.get_account(acct.id).await.unwrap().unwrap();
    assert_eq!(
        (found.plan.as_str(), found.monthly_run_limit),
        ("pro", Some(5))
    );
}

fn number(p: &Published) -> Option<u32> {
    match p {
        Published::Found(v) => Some(v.version),
        _ => None,
    }
}

#[tokio::test]
async fn publishing_deleting_and_foreign_accounts_are_seen_by_published_version() {
    let (_dir, store) = cached();
    let (a, b) = (account("a"), account("b"));
    store.create_account(&a).await.unwrap();
    store.create_account(&b).await.unwrap();
    let wf = workflow(a.id, "w");
    store.create_workflow(&wf).await.unwrap();

    let unpublished = store.published_version(a.id, wf.id, None).await.unwrap();
    assert!(
        matches!(unpublished, Published::NotPublished),
        "{unpublished:?}"
    );

    for expected in 1..=2u32 {
        let doc = json!({"name": "w", "v": expected});
        store
            .publish_workflow(a.id, wf.id, doc.clone(), Default::default(), now())
            .await
            .unwrap()
            .unwrap();
        let latest = store.published_version(a.id, wf.id, None).await.unwrap();
        assert_eq!(
            number(&latest),
            Some(expected),
            "the latest after publish {expected}"
        );
        let Published::Found(v) = latest else {
            unreachable!()
        };
        assert_eq!(v.document, doc);
    }
    let first = store.published_version(a.id, wf.id, Some(1)).await.unwrap();
    assert_eq!(number(&first), Some(1));
    let missing = store.published_version(a.id, wf.id, Some(3)).await.unwrap();
    assert!(
        matches!(missing, Published::NoSuchVersion(3)),
        "{missing:?}"
    );
    // Another account's lookup of the same id finds nothing, cached or not.
    let foreign = store.published_version(b.id, wf.id, None).await.unwrap();
    assert!(matches!(foreign, Published::NoWorkflow), "{foreign:?}");

    assert!(store.delete_workflow(a.id, wf.id).await.unwrap());
    let gone = store.published_version(a.id, wf.id, None).await.unwrap();
    assert!(matches!(gone, Published::NoWorkflow), "{gone:?}");
    assert!(
        store
            .get_workflow_version(a.id, wf.id, 1)
            .await
            .unwrap()
            .is_none(),
        "a deleted workflow's versions are gone from the cache too"
    );
}
