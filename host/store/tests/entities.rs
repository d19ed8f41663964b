//! CRUD of each entity and tenant isolation.

mod common;

use common::*;
use pipecat_store::{KeyHash, Store, StoreError};
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn accounts_crud() {
    let (_dir, store) = open_temp();
    let a = account("acme");
    store.create_account(&a).await.unwrap();
    assert!(matches!(
        store.create_account(&a).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    assert_eq!(store.get_account(a.id).await.unwrap(), Some(a.clone()));
    let b = account("globex");
    store.create_account(&b).await.unwrap();
    let ids: Vec<Uuid> = store
        .list_accounts()
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.id)
        .collect();
    assert_eq!(ids, vec![a.id, b.id]);

    let mut changed = a.clone();
    changed.plan = "pro".into();
    changed.monthly_run_limit = None;
    assert!(store.update_account(&changed).await.unwrap());
    assert_eq!(store.get_account(a.id).await.unwrap(), Some(changed));
    assert!(!store.update_account(&account("ghost")).await.unwrap());
    assert_eq!(store.get_account(Uuid::now_v7()).await.unwrap(), None);
}

#[tokio::test]
async fn admin_key_hash_round_trips() {
    let (_dir, store) = open_temp();
    assert_eq!(store.admin_key_hash().await.unwrap(), None);
    store
        .set_admin_key_hash(KeyHash::of("pc_admin_secret"))
        .await
        .unwrap();
    assert_eq!(
        store.admin_key_hash().await.unwrap(),
        Some(KeyHash::of("pc_admin_secret"))
    );
}

#[tokio::test]
async fn api_keys_by_hash_list_and_revoke() {
    let (_dir, store) = open_temp();
    let a = account("acme");
    let b = account("globex");
    store.create_account(&a).await.unwrap();
    store.create_account(&b).await.unwrap();
    let k1 = api_key(a.id, "pc_live_one");
    let k2 = api_key(a.id, "pc_live_two");
    let kb = api_key(b.id, "pc_live_bbb");
    for k in [&k1, &k2, &kb] {
        store.create_api_key(k).await.unwrap();
    }
    // Same hash again is refused.
    let mut dup = api_key(a.id, "pc_live_one");
    dup.id = Uuid::now_v7();
    assert!(matches!(
        store.create_api_key(&dup).await,
        Err(StoreError::AlreadyExists { .. })
    ));

    assert_eq!(
        store
            .api_key_by_hash(&KeyHash::of("pc_live_two"))
            .await
            .unwrap(),
        Some(k2.clone())
    );
    assert_eq!(
        store
            .api_key_by_hash(&KeyHash::of("pc_live_nope"))
            .await
            .unwrap(),
        None
    );
    let listed: Vec<Uuid> = store
        .list_api_keys(a.id)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(listed, vec![k1.id, k2.id]);
    assert_eq!(store.list_api_keys(b.id).await.unwrap(), vec![kb.clone()]);

    let at = now();
    let revoked = store
        .revoke_api_key(k1.id, at)
        .await
        .unwrap()
        .expect("key exists");
    assert_eq!(revoked.revoked_at, Some(at));
    let again = store
        .revoke_api_key(k1.id, at + time::Duration::hours(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        again.revoked_at,
        Some(at),
        "the first revocation time stays"
    );
    let by_hash = store
        .api_key_by_hash(&KeyHash::of("pc_live_one"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_hash.revoked_at, Some(at));
    assert_eq!(
        store.get_api_key(k1.id).await.unwrap().unwrap().revoked_at,
        Some(at)
    );
    assert_eq!(
        store.revoke_api_key(Uuid::now_v7(), at).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn plugins_versions_blobs_and_delete() {
    let (_dir, store) = open_temp();
    let a = Uuid::now_v7();
    let b = Uuid::now_v7();
    let bytes = b"\0asm component bytes".to_vec();
    let tools = json!([{"name": "get_weather", "description": "d", "parameters": {}}]);
    let v1 = store
        .add_plugin_version(a, "weather", &bytes, tools.clone(), now())
        .await
        .unwrap();
    assert_eq!(
        (v1.version, v1.size, v1.id.clone()),
        (
            1,
            bytes.len() as u64,
            blake3::hash(&bytes).to_hex().to_string()
        )
    );
    let v2 = store
        .add_plugin_version(a, "weather", b"other bytes", tools.clone(), now())
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    // A name that is a prefix of another stays separate.
    let w = store
        .add_plugin_version(a, "weatherx", &bytes, json!([]), now())
        .await
        .unwrap();
    assert_eq!(w.version, 1);
    // Another account uploading identical bytes shares the blob and numbers its own versions.
    let vb = store
        .add_plugin_version(b, "weather", &bytes, tools.clone(), now())
        .await
        .unwrap();
    assert_eq!((vb.version, vb.id.clone()), (1, v1.id.clone()));
    assert_eq!(
        store.get_plugin_blob(&v1.id).await.unwrap(),
        Some(bytes.clone())
    );
    assert_eq!(store.get_plugin_blob("not-hex").await.unwrap(), None);

    let versions = store.list_plugin_versions(a, "weather").await.unwrap();
    assert_eq!(versions, vec![v1.clone(), v2.clone()]);
    assert_eq!(
        store.latest_plugin_version(a, "weather").await.unwrap(),
        Some(v2.clone())
    );
    assert_eq!(
        store.list_plugins(a).await.unwrap(),
        vec![v1.clone(), v2.clone(), w.clone()]
    );
    assert!(matches!(
        store
            .add_plugin_version(a, "bad\0name", &bytes, json!([]), now())
            .await,
        Err(StoreError::InvalidInput(_))
    ));

    assert_eq!(store.delete_plugin(a, "weather").await.unwrap(), 2);
    assert_eq!(
        store.list_plugin_versions(a, "weather").await.unwrap(),
        vec![]
    );
    assert_eq!(
        store.latest_plugin_version(a, "weather").await.unwrap(),
        None
    );
    assert_eq!(store.list_plugins(a).await.unwrap(), vec![w]);
    assert_eq!(store.delete_plugin(a, "weather").await.unwrap(), 0);
    // The blob stays: b's version (and published workflow pins) still need it.
    assert_eq!(
        store.get_plugin_blob(&v1.id).await.unwrap(),
        Some(bytes.clone())
    );
    assert_eq!(
        store.latest_plugin_version(b, "weather").await.unwrap(),
        Some(vb)
    );
    // After deletion numbering starts again.
    assert_eq!(
        store
            .add_plugin_version(a, "weather", &bytes, tools, now())
            .await
            .unwrap()
            .version,
        1
    );
}

#[tokio::test]
async fn workflows_crud_and_publish_numbering() {
    let (_dir, store) = open_temp();
    let acct = Uuid::now_v7();
    let wf = workflow(acct, "support");
    store.create_workflow(&wf).await.unwrap();
    assert!(matches!(
        store.create_workflow(&wf).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    assert_eq!(
        store.get_workflow(acct, wf.id).await.unwrap(),
        Some(wf.clone())
    );
    let wf2 = workflow(acct, "second");
    store.create_workflow(&wf2).await.unwrap();
    assert_eq!(
        store.list_workflows(acct).await.unwrap(),
        vec![wf.clone(), wf2.clone()]
    );

    let later = now() + time::Duration::seconds(5);
    let updated = store
        .update_workflow_draft(acct, wf.id, "support-v2", json!({"n": 2}), later)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (updated.name.as_str(), &updated.draft, updated.updated_at),
        ("support-v2", &json!({"n": 2}), later)
    );
    assert_eq!(updated.created_at, wf.created_at);

    let p1 = store
        .publish_workflow(
            acct,
            wf.id,
            json!({"doc": 1}),
            pins(&[("weather", "aa")]),
            now(),
        )
        .await
        .unwrap()
        .unwrap();
    let p2 = store
        .publish_workflow(acct, wf.id, json!({"doc": 2}), pins(&[]), now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((p1.version, p2.version), (1, 2));
    assert_eq!(
        store
            .get_workflow(acct, wf.id)
            .await
            .unwrap()
            .unwrap()
            .published_version,
        Some(2)
    );
    assert_eq!(
        store.get_workflow_version(acct, wf.id, 1).await.unwrap(),
        Some(p1.clone())
    );
    assert_eq!(
        store.list_workflow_versions(acct, wf.id).await.unwrap(),
        vec![p1, p2]
    );
    assert_eq!(
        store.get_workflow_version(acct, wf.id, 3).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .publish_workflow(acct, Uuid::now_v7(), json!({}), pins(&[]), now())
            .await
            .unwrap(),
        None
    );

    assert!(store.delete_workflow(acct, wf.id).await.unwrap());
    assert_eq!(store.get_workflow(acct, wf.id).await.unwrap(), None);
    assert_eq!(
        store.list_workflow_versions(acct, wf.id).await.unwrap(),
        vec![]
    );
    assert!(!store.delete_workflow(acct, wf.id).await.unwrap());
    assert_eq!(store.list_workflows(acct).await.unwrap(), vec![wf2]);
}

#[tokio::test]
async fn concurrent_publishes_get_distinct_numbers() {
    let (_dir, store) = open_temp();
    let store = std::sync::Arc::new(store);
    let acct = Uuid::now_v7();
    let wf = workflow(acct, "w");
    store.create_workflow(&wf).await.unwrap();
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .publish_workflow(acct, wf.id, json!({"i": i}), pins(&[]), now())
                    .await
            })
        })
        .collect();
    let mut numbers = Vec::new();
    for t in tasks {
        numbers.push(t.await.unwrap().unwrap().unwrap().version);
    }
    numbers.sort();
    assert_eq!(numbers, (1..=10).collect::<Vec<u32>>());
}

#[tokio::test]
async fn another_account_cannot_see_or_touch_objects() {
    let (_dir, store) = open_temp();
    let a = Uuid::now_v7();
    let b = Uuid::now_v7();
    let wf = workflow(a, "private");
    store.create_workflow(&wf).await.unwrap();
    store
        .publish_workflow(a, wf.id, json!({}), pins(&[]), now())
        .await
        .unwrap()
        .unwrap();
    store
        .add_plugin_version(a, "secret", b"bytes", json!([]), now())
        .await
        .unwrap();
    let r = run(a, wf.id, pipecat_store::RunStatus::Success);
    store.put_run(&r).await.unwrap();

    assert_eq!(store.get_workflow(b, wf.id).await.unwrap(), None);
    assert_eq!(store.list_workflows(b).await.unwrap(), vec![]);
    assert_eq!(store.get_workflow_version(b, wf.id, 1).await.unwrap(), None);
    assert_eq!(
        store.list_workflow_versions(b, wf.id).await.unwrap(),
        vec![]
    );
    assert_eq!(
        store
            .update_workflow_draft(b, wf.id, "x", json!({}), now())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .publish_workflow(b, wf.id, json!({}), pins(&[]), now())
            .await
            .unwrap(),
        None
    );
    assert!(!store.delete_workflow(b, wf.id).await.unwrap());
    assert_eq!(store.list_plugins(b).await.unwrap(), vec![]);
    assert_eq!(
        store.latest_plugin_version(b, "secret").await.unwrap(),
        None
    );
    assert_eq!(store.delete_plugin(b, "secret").await.unwrap(), 0);
    assert_eq!(store.get_run(b, r.run_id).await.unwrap(), None);
    assert!(
        store
            .list_runs(b, Some(wf.id), Default::default())
            .await
            .unwrap()
            .runs
            .is_empty()
    );
    assert!(
        store
            .list_runs(b, None, Default::default())
            .await
            .unwrap()
            .runs
            .is_empty()
    );

    // A's objects are all still there.
    assert!(store.get_workflow(a, wf.id).await.unwrap().is_some());
    assert!(
        store
            .latest_plugin_version(a, "secret")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.get_run(a, r.run_id).await.unwrap(), Some(r));
}
