//! The real wedge, end to end: with no file descriptor left, sled 0.34 fails to create the blob file of a
//! large value, leaks a log reservation, and every later flush waits for ever. The stall watchdog turns
//! that into `Stalled` errors and a close that returns; the next open recovers the acknowledged runs.
//!
//! The file-descriptor limit is per process, so the wedge happens in a child process (this test binary,
//! run for `wedge_child` only), which reports the runs it had acknowledged and exits with the stuck
//! thread still blocked.

mod common;

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{account, assert_stalled, child_process, close_within, run, within, workflow};
use pipecat_store::{RunStatus, SledStore, Store, StoreOptions};
use serde_json::json;
use uuid::Uuid;

const CHILD_ENV: &str = "PIPECAT_STORE_WEDGE_DIR";
const ACK: &str = "ACK ";
const SKIPPED: &str = "SKIPPED ";
/// Lowers the soft limit of open files and opens `/dev/null` until none is left; dropping the files and
/// restoring `old` undoes it.
fn use_up_file_descriptors() -> Result<(Vec<File>, libc::rlimit), String> {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `old` is a valid out-pointer for one `rlimit`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut old) } != 0 {
        return Err("getrlimit failed".into());
    }
    let low = libc::rlimit {
        rlim_cur: old.rlim_cur.min(256),
        rlim_max: old.rlim_max,
    };
    // SAFETY: `low` is a valid `rlimit`.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &low) } != 0 {
        return Err("setrlimit failed".into());
    }
    let mut held = Vec::new();
    while let Ok(f) = File::open("/dev/null") {
        held.push(f);
    }
    Ok((held, old))
}

fn restore_file_descriptors(held: Vec<File>, old: libc::rlimit) {
    drop(held);
    // SAFETY: `old` is the valid `rlimit` read before.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &old) };
}

/// Not a test on its own: the child process of `a_wedged_sled_answers_stall_errors_and_reopens`.
#[test]
fn wedge_child() {
    let Some((dir, rt)) = child_process(CHILD_ENV) else {
        return;
    };
    rt.block_on(async move {
        let options = StoreOptions {
            stall_limit: Duration::from_secs(1),
            ..StoreOptions::default()
        };
        let store = SledStore::open_with_options(&dir, options).unwrap();
        let acct = account("a");
        store.create_account(&acct).await.unwrap();
        let wf = workflow(acct.id, "w");
        store.create_workflow(&wf).await.unwrap();
        let mut out = std::io::stdout().lock();
        for _ in 0..20 {
            let r = run(acct.id, wf.id, RunStatus::Success);
            store.put_run(&r).await.unwrap();
            writeln!(out, "{ACK}{} {}", acct.id, r.run_id).unwrap();
        }
        out.flush().unwrap();

        let (held, old) = match use_up_file_descriptors() {
            Ok(used) => used,
            Err(why) => {
                writeln!(out, "{SKIPPED}{why}").unwrap();
                return;
            }
        };
        // Over sled's blob threshold (~128 KiB): the blob file cannot be created.
        let mut big = run(acct.id, wf.id, RunStatus::Success);
        big.record["output"] = json!("x".repeat(300 * 1024));
        let failed = within("a large put_run", store.put_run(&big)).await;
        restore_file_descriptors(held, old);
        failed.expect_err("a blob file without a file descriptor");

        assert_stalled("flush", within("flush", store.flush()).await);
        assert!(store.is_stalled());
        let late = run(acct.id, wf.id, RunStatus::Success);
        assert_stalled("put_run", within("put_run", store.put_run(&late)).await);
        assert_stalled(
            "check_ready",
            within("check_ready", store.check_ready()).await,
        );
        // Without the watchdog this joined the stuck flusher and flushed sled: for ever.
        close_within(store);
        writeln!(out, "CLOSED").unwrap();
    });
}

/// What follows the first `marker` in `line`.
fn after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    line.find(marker).map(|at| &line[at + marker.len()..])
}

#[test]
fn a_wedged_sled_answers_stall_errors_and_reopens() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "wedge_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut acked = Vec::new();
    let mut closed = false;
    let mut child = child;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        // The harness prints `test wedge_child ... ` before the child's first line, on the same line.
        let line = after(&line, "... ").unwrap_or(&line);
        if let Some(why) = line.strip_prefix(SKIPPED) {
            eprintln!("SKIPPED: cannot use up file descriptors: {why}");
            return;
        }
        if let Some((acct, id)) = line.strip_prefix(ACK).and_then(|l| l.split_once(' ')) {
            acked.push((Uuid::parse_str(acct).unwrap(), Uuid::parse_str(id).unwrap()));
        }
        closed |= line == "CLOSED";
    }
    let status = child.wait().unwrap();
    assert!(
        status.success() && closed,
        "the wedged child failed: {status}"
    );
    assert_eq!(acked.len(), 20);

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = SledStore::open(&dir).expect("the store reopens after the wedge");
        for (acct, id) in &acked {
            assert!(
                store.get_run(*acct, *id).await.unwrap().is_some(),
                "an acknowledged run was lost"
            );
        }
        store.check_ready().await.expect("ready after reopening");
        let (acct, _) = acked[0];
        let wf = Uuid::now_v7();
        store
            .put_run(&run(acct, wf, RunStatus::Success))
            .await
            .expect("writes work after reopening");
    });
}
