//! A full disk fails writes with `DiskFull` and never wedges the store: sled 0.34 writes a page over its
//! blob threshold (~128 KiB, a quarter of a segment) to a file of its own, and when creating that file
//! fails it loses track of log space it had reserved, after which every flush waits forever. So the store
//! refuses a large value up front when the file system cannot take it (with room to spare), and a write
//! that still fails leaves the next writes answering, not hanging.
//!
//! Needs a tmpfs it can fill (root / CAP_SYS_ADMIN); skips with a message otherwise.

mod common;

use std::path::Path;

use common::{account, api_key, run, within, workflow};
use pipecat_store::{RunStatus, SledStore, Store};
use serde_json::json;

fn mount_tmpfs(dir: &Path, size: &str) -> Result<(), String> {
    let out = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .output()
        .map_err(|e| format!("cannot run mount: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Fills the file system holding `dir` until a write fails.
fn fill(dir: &Path) {
    use std::io::Write as _;
    let mut f = std::fs::File::create(dir.join("filler")).expect("filler");
    let chunk = vec![0u8; 16 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_write_on_a_full_disk_fails_and_later_writes_still_answer() {
    let dir = tempfile::tempdir().expect("dir");
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).expect("mnt");
    if let Err(why) = mount_tmpfs(&mnt, "16m") {
        eprintln!("SKIPPED: cannot mount a tmpfs to fill (needs root / CAP_SYS_ADMIN): {why}");
        return;
    }
    let _mount = Mount(mnt.clone());
    let store = SledStore::open(mnt.join("data")).expect("open");
    let acct = account("a");
    store.create_account(&acct).await.expect("account");
    let wf = workflow(acct.id, "w");
    store.create_workflow(&wf).await.expect("workflow");
    fill(&mnt);

    for _ in 0..3 {
        let mut big = run(acct.id, wf.id, RunStatus::Success);
        big.record["output"] = json!("x".repeat(300 * 1024));
        let err = within("a large put_run", store.put_run(&big))
            .await
            .expect_err("a 300 KiB record on a full disk");
        assert!(err.is_disk_full(), "{err}");
    }
    // Writes through sled's own flush and through the run log both answer (they may fail: the disk is
    // full), and so does closing the store.
    let _ = within(
        "a key write",
        store.create_api_key(&api_key(acct.id, "pc_live_x")),
    )
    .await;
    let _ = within(
        "a small put_run",
        store.put_run(&run(acct.id, wf.id, RunStatus::Success)),
    )
    .await;
    let _ = within("a flush", store.flush()).await;
    // A plain thread, not `spawn_blocking`: the runtime would wait for a hung close at its own drop.
    let (closed, done) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        drop(store);
        let _ = closed.send(());
    });
    within("closing the store", done).await.expect("closed");
}
