//! A disk write that never completes turns into `Stalled` errors, not hangs: sled 0.34 can wedge every
//! later flush (a blob file it failed to create leaks a log reservation), and a dying disk can block a
//! write for ever. The store's writer threads are made to hang with its fault-injection hold; with a stall
//! limit of 1 s, writers already waiting get the error once the limit passes, new ones at once, readiness
//! fails, closing the store returns, and releasing the hold makes writes succeed again.

mod common;

use std::task::Poll;
use std::time::Duration;

use common::{account, api_key, assert_stalled, close_within, run, within, workflow};
use pipecat_store::{RunStatus, SledStore, Store, StoreOptions};

fn open_stalling(dir: &std::path::Path) -> SledStore {
    SledStore::open_with_options(
        dir.join("data"),
        StoreOptions {
            stall_limit: Duration::from_secs(1),
            ..StoreOptions::default()
        },
    )
    .expect("open")
}

#[test]
fn the_default_stall_limit_is_30_s() {
    assert_eq!(StoreOptions::default().stall_limit, Duration::from_secs(30));
    assert_eq!(StoreOptions::DEFAULT_STALL_LIMIT, Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_disk_write_fails_waiters_and_new_writes_then_the_store_recovers() {
    let dir = tempfile::tempdir().expect("dir");
    let store = open_stalling(dir.path());
    let acct = account("a");
    store.create_account(&acct).await.expect("account");
    let wf = workflow(acct.id, "w");
    store.create_workflow(&wf).await.expect("workflow");
    let before = run(acct.id, wf.id, RunStatus::Success);
    store.put_run(&before).await.expect("a run before the hang");
    assert!(!store.is_stalled());

    store.hold_disk_writes();
    // Both queued before any round can have passed the limit: they wait, then get the error.
    let waiting = run(acct.id, wf.id, RunStatus::Success);
    let (logged, flushed) = within("waiters of a hung round", async {
        tokio::join!(store.put_run(&waiting), store.flush())
    })
    .await;
    assert_stalled("a put_run waiting on the run log", logged);
    assert_stalled("a flush waiting on the flusher", flushed);
    assert!(store.is_stalled());

    // New writes and readiness fail at once instead of queuing behind the hung rounds.
    let late = run(acct.id, wf.id, RunStatus::Success);
    assert_stalled("put_run", within("put_run", store.put_run(&late)).await);
    assert_stalled("flush", within("flush", store.flush()).await);
    assert_stalled(
        "check_ready",
        within("check_ready", store.check_ready()).await,
    );
    assert_stalled(
        "create_api_key",
        within(
            "create_api_key",
            store.create_api_key(&api_key(acct.id, "pc_live_x")),
        )
        .await,
    );
    assert_stalled(
        "reserve_run",
        within("reserve_run", store.reserve_run(acct.id, "2026-12", 10)).await,
    );
    // Reads do not wait for the disk.
    assert!(
        store
            .get_run(acct.id, before.run_id)
            .await
            .unwrap()
            .is_some()
    );

    store.release_disk_writes();
    assert!(!store.is_stalled());
    let after = run(acct.id, wf.id, RunStatus::Success);
    within("put_run after the release", store.put_run(&after))
        .await
        .expect("put_run after the release");
    within("flush after the release", store.flush())
        .await
        .expect("flush after the release");
    within("check_ready after the release", store.check_ready())
        .await
        .expect("ready after the release");
    assert!(
        store
            .get_run(acct.id, after.run_id)
            .await
            .unwrap()
            .is_some()
    );
    close_within(store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_store_closes_without_waiting_for_the_stuck_write() {
    let dir = tempfile::tempdir().expect("dir");
    let store = open_stalling(dir.path());
    store.hold_disk_writes();
    assert_stalled("flush", within("flush", store.flush()).await);
    assert!(store.is_stalled());
    close_within(store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_closed_during_a_hung_write_returns_once_the_limit_passes() {
    let dir = tempfile::tempdir().expect("dir");
    let store = open_stalling(dir.path());
    let acct = account("a");
    store.create_account(&acct).await.expect("account");
    store.hold_disk_writes();
    // Queue a flush (one poll) and walk away: the flusher is in a held round when the store is closed,
    // and not yet over the limit.
    let mut flush = Box::pin(store.flush());
    std::future::poll_fn(|cx| {
        assert!(
            flush.as_mut().poll(cx).is_pending(),
            "a held flush answered"
        );
        Poll::Ready(())
    })
    .await;
    drop(flush);
    assert!(!store.is_stalled());
    close_within(store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_write_released_under_the_limit_is_not_a_stall() {
    let dir = tempfile::tempdir().expect("dir");
    let store = open_stalling(dir.path());
    store.hold_disk_writes();
    // The flush is queued (polled first), then the hold released well before the limit.
    let (flushed, ()) = within("a flush released in time", async {
        tokio::join!(store.flush(), async { store.release_disk_writes() })
    })
    .await;
    flushed.expect("a flush released before the limit succeeds");
    assert!(!store.is_stalled());
    close_within(store);
}
