//! Runs: paging newest first, status filter, and exact monthly run limits.

mod common;

use std::sync::Arc;

use common::*;
use pipecat_store::{RunQuery, RunStatus, Store, StoreError};
use uuid::Uuid;

#[tokio::test]
async fn runs_page_newest_first_with_cursor_and_status() {
    let (_dir, store) = open_temp();
    let acct = Uuid::now_v7();
    let wf = Uuid::now_v7();
    let other_wf = Uuid::now_v7();
    let mut all = Vec::new();
    for i in 0..7 {
        let status = if i % 3 == 0 {
            RunStatus::Error
        } else {
            RunStatus::Success
        };
        let r = run(acct, wf, status);
        store.put_run(&r).await.unwrap();
        all.push(r);
        store
            .put_run(&run(acct, other_wf, RunStatus::Success))
            .await
            .unwrap();
    }
    let newest_first: Vec<Uuid> = all.iter().rev().map(|r| r.run_id).collect();

    let p1 = store
        .list_runs(
            acct,
            Some(wf),
            RunQuery {
                limit: 3,
                cursor: None,
                status: None,
                ..RunQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        p1.runs.iter().map(|r| r.run_id).collect::<Vec<_>>(),
        newest_first[..3]
    );
    assert_eq!(p1.next_cursor, Some(newest_first[2]));
    let p2 = store
        .list_runs(
            acct,
            Some(wf),
            RunQuery {
                limit: 3,
                cursor: p1.next_cursor,
                status: None,
                ..RunQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        p2.runs.iter().map(|r| r.run_id).collect::<Vec<_>>(),
        newest_first[3..6]
    );
    let p3 = store
        .list_runs(
            acct,
            Some(wf),
            RunQuery {
                limit: 3,
                cursor: p2.next_cursor,
                status: None,
                ..RunQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        p3.runs.iter().map(|r| r.run_id).collect::<Vec<_>>(),
        newest_first[6..]
    );
    assert_eq!(p3.next_cursor, None);

    // Exactly a page's worth left: no next cursor.
    let exact = store
        .list_runs(
            acct,
            Some(wf),
            RunQuery {
                limit: 7,
                cursor: None,
                status: None,
                ..RunQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((exact.runs.len(), exact.next_cursor), (7, None));

    // Status filter: errors are runs 0, 3, 6.
    let errors: Vec<Uuid> = all
        .iter()
        .rev()
        .filter(|r| r.status == RunStatus::Error)
        .map(|r| r.run_id)
        .collect();
    let e1 = store
        .list_runs(
            acct,
            Some(wf),
            RunQuery {
                limit: 2,
                cursor: None,
                status: Some(RunStatus::Error),
                ..RunQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        e1.runs.iter().map(|r| r.run_id).collect::<Vec<_>>(),
        errors[..2]
    );
    assert!(e1.runs.iter().all(|r| r.status == RunStatus::Error));
    let e2 = store
        .list_runs(
            acct,
            Some(wf),
            RunQuery {
                limit: 2,
                cursor: e1.next_cursor,
                status: Some(RunStatus::Error),
                ..RunQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        e2.runs.iter().map(|r| r.run_id).collect::<Vec<_>>(),
        errors[2..]
    );
    assert_eq!(e2.next_cursor, None);

    // Account-wide listing covers both workflows.
    let everything = store
        .list_runs(
            acct,
            None,
            RunQuery {
                limit: 100,
                cursor: None,
                status: None,
                ..RunQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(everything.runs.len(), 14);
    assert!(
        everything
            .runs
            .windows(2)
            .all(|w| w[0].run_id > w[1].run_id)
    );
}

#[tokio::test]
async fn a_run_can_be_replaced_and_its_status_index_follows() {
    let (_dir, store) = open_temp();
    let acct = Uuid::now_v7();
    let wf = Uuid::now_v7();
    let mut r = run(acct, wf, RunStatus::Running);
    store.put_run(&r).await.unwrap();
    r.status = RunStatus::Success;
    r.record = serde_json::json!({"output": "done"});
    store.put_run(&r).await.unwrap();
    assert_eq!(
        store.get_run(acct, r.run_id).await.unwrap(),
        Some(r.clone())
    );
    let running = RunQuery {
        limit: 10,
        cursor: None,
        status: Some(RunStatus::Running),
        ..RunQuery::default()
    };
    assert!(
        store
            .list_runs(acct, Some(wf), running)
            .await
            .unwrap()
            .runs
            .is_empty()
    );
    let success = RunQuery {
        limit: 10,
        cursor: None,
        status: Some(RunStatus::Success),
        ..RunQuery::default()
    };
    assert_eq!(
        store.list_runs(acct, Some(wf), success).await.unwrap().runs,
        vec![r]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reserve_run_is_exact_under_concurrency() {
    let (_dir, store) = open_temp();
    let store = Arc::new(store);
    let acct = Uuid::now_v7();
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.reserve_run(acct, "2026-12", 20).await })
        })
        .collect();
    let mut ok = Vec::new();
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(used) => ok.push(used),
            Err(StoreError::LimitExceeded { used, limit }) => {
                assert_eq!((used, limit), (20, 20));
                refused += 1;
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    ok.sort();
    assert_eq!(
        ok,
        (1..=20).collect::<Vec<u64>>(),
        "each accepted run got a distinct count"
    );
    assert_eq!(refused, 20);
    assert_eq!(store.runs_used(acct, "2026-12").await.unwrap(), 20);
}

#[tokio::test]
async fn a_new_month_starts_a_fresh_count() {
    let (_dir, store) = open_temp();
    let acct = Uuid::now_v7();
    let other = Uuid::now_v7();
    assert_eq!(store.reserve_run(acct, "2026-11", 2).await.unwrap(), 1);
    assert_eq!(store.reserve_run(acct, "2026-11", 2).await.unwrap(), 2);
    assert!(matches!(
        store.reserve_run(acct, "2026-11", 2).await,
        Err(StoreError::LimitExceeded { used: 2, limit: 2 })
    ));
    assert_eq!(store.reserve_run(acct, "2026-12", 2).await.unwrap(), 1);
    assert_eq!(
        store.reserve_run(other, "2026-11", 2).await.unwrap(),
        1,
        "counts are per account"
    );
    assert_eq!(store.runs_used(acct, "2026-11").await.unwrap(), 2);
    assert_eq!(store.runs_used(acct, "2026-12").await.unwrap(), 1);
    assert!(matches!(
        store.reserve_run(acct, "december", 2).await,
        Err(StoreError::InvalidInput(_))
    ));
    // A raised limit lets more runs in.
    assert_eq!(store.reserve_run(acct, "2026-11", 3).await.unwrap(), 3);
}

#[test]
fn month_key_is_utc_year_and_month() {
    let t = time::macros::datetime!(2026-12-31 23:30 -02:00);
    assert_eq!(pipecat_store::month_key(t), "2027-01");
}

#[tokio::test]
async fn a_reservation_rides_on_its_runs_log_round() {
    let (_dir, store) = open_temp();
    let acct = Uuid::now_v7();
    let wf = Uuid::now_v7();
    let before = store.flush_count();
    for i in 1..=20 {
        assert_eq!(store.reserve_run(acct, "2026-12", 100).await.unwrap(), i);
        store
            .put_run(&run(acct, wf, RunStatus::Success))
            .await
            .unwrap();
    }
    // One `fdatasync` per invocation: the reservation is written with its record, not in a round of its own
    // (which also made the record wait for that round to finish first).
    assert_eq!(store.flush_count() - before, 20);
    assert_eq!(store.runs_used(acct, "2026-12").await.unwrap(), 20);
}
