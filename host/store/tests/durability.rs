//! Opening rules (lock, marker, damage) and durability across close, reopen and `kill -9`.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use common::*;
use pipecat_store::{MARKER_FILE, RunStatus, SledStore, Store, StoreError};
use uuid::Uuid;

/// A store with a little of everything in it, closed again.
fn populated(dir: &Path) -> (Uuid, Uuid, Vec<Uuid>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = SledStore::open(dir).unwrap();
        let a = account("acme");
        store.create_account(&a).await.unwrap();
        let wf = workflow(a.id, "w");
        store.create_workflow(&wf).await.unwrap();
        let mut runs = Vec::new();
        for _ in 0..200 {
            let r = run(a.id, wf.id, RunStatus::Success);
            store.put_run(&r).await.unwrap();
            runs.push(r.run_id);
        }
        (a.id, wf.id, runs)
    })
}

#[test]
fn data_survives_close_and_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let (acct, wf, runs) = populated(&dir);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store = SledStore::open(&dir).unwrap();
        assert!(store.get_account(acct).await.unwrap().is_some());
        assert!(store.get_workflow(acct, wf).await.unwrap().is_some());
        for id in &runs {
            assert!(store.get_run(acct, *id).await.unwrap().is_some());
        }
        assert!(store.size_on_disk().await.unwrap() > 0);
        store.check_ready().await.unwrap();
        store.flush().await.unwrap();
    });
}

#[test]
fn a_second_open_of_the_same_dir_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let first = SledStore::open(&dir).unwrap();
    let err = SledStore::open(&dir).unwrap_err();
    assert!(
        matches!(&err, StoreError::Locked { path } if path == &dir),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&dir.display().to_string()) && msg.contains("another pipecat is running"),
        "{msg}"
    );
    drop(first);
    SledStore::open(&dir).expect("reopens once the first store is closed");
}

fn sled_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.join("sled")];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p)
            } else {
                out.push(p)
            }
        }
    }
    out
}

/// Deterministic garbage.
fn garbage(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn a_store_overwritten_with_garbage_refuses_to_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    populated(&dir);
    for (i, f) in sled_files(&dir).iter().enumerate() {
        let len = fs::metadata(f).unwrap().len() as usize;
        fs::write(f, garbage(len.max(64), i as u64 + 7)).unwrap();
    }
    let err = SledStore::open(&dir).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    eprintln!("refused: {err}");
}

#[test]
fn a_store_with_garbage_inside_its_data_file_refuses_to_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    populated(&dir);
    let db = dir.join("sled").join("db");
    let mut bytes = fs::read(&db).unwrap();
    let len = bytes.len();
    bytes[..len].copy_from_slice(&garbage(len, 99));
    fs::write(&db, bytes).unwrap();
    let err = SledStore::open(&dir).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    eprintln!("refused: {err}");
}

#[test]
fn a_truncated_store_refuses_to_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    populated(&dir);
    let db = dir.join("sled").join("db");
    let f = fs::OpenOptions::new().write(true).open(&db).unwrap();
    f.set_len(0).unwrap();
    drop(f);
    let err = SledStore::open(&dir).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    eprintln!("refused: {err}");
}

#[test]
fn a_store_cut_short_at_the_tail_refuses_to_open() {
    // sled alone would recover the surviving prefix and silently lose the rest; the clean-shutdown
    // checksum in the marker catches it.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rt.block_on(async {
        let store = Arc::new(SledStore::open(&dir).unwrap());
        let (acct, wf) = (Uuid::now_v7(), Uuid::now_v7());
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    for _ in 0..200 {
                        store
                            .put_run(&run(acct, wf, RunStatus::Success))
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    drop(rt);
    let db = dir.join("sled").join("db");
    let len = fs::metadata(&db).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&db)
        .unwrap()
        .set_len(len * 9 / 10)
        .unwrap();
    let err = SledStore::open(&dir).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    eprintln!("refused: {err}");
}

#[test]
fn a_store_whose_sled_files_are_gone_refuses_to_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    populated(&dir);
    fs::remove_dir_all(dir.join("sled")).unwrap();
    let err = SledStore::open(&dir).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    eprintln!("refused: {err}");
}

#[test]
fn foreign_or_unmarked_directories_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let foreign = tmp.path().join("foreign");
    fs::create_dir_all(&foreign).unwrap();
    fs::write(foreign.join("notes.txt"), "hello").unwrap();
    assert!(matches!(
        SledStore::open(&foreign).unwrap_err(),
        StoreError::NotAStore { .. }
    ));
    assert!(foreign.join("notes.txt").exists());

    let unmarked = tmp.path().join("unmarked");
    populated(&unmarked);
    fs::remove_file(unmarked.join(MARKER_FILE)).unwrap();
    let err = SledStore::open(&unmarked).unwrap_err();
    assert!(matches!(err, StoreError::NotAStore { .. }), "{err:?}");
    assert!(
        err.to_string().contains("sled files but no marker"),
        "{err}"
    );
}

#[test]
fn a_newer_format_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    populated(&dir);
    fs::write(
        dir.join(MARKER_FILE),
        r#"{"format_version": 99, "created_by": "future"}"#,
    )
    .unwrap();
    let err = SledStore::open(&dir).unwrap_err();
    assert!(
        matches!(err, StoreError::UnsupportedFormat { found: 99, .. }),
        "{err:?}"
    );
    fs::write(dir.join(MARKER_FILE), "not json").unwrap();
    assert!(matches!(
        SledStore::open(&dir).unwrap_err(),
        StoreError::Corrupt { .. }
    ));
}

const WRITER_ENV: &str = "PIPECAT_STORE_KILL9_WRITER_DIR";
const KILL9_MONTH: &str = "2026-12";
const ACK: &str = "ACK ";

/// Not a test on its own: the child process of `acknowledged_runs_survive_kill_9`. It writes runs from
/// several tasks forever and prints each run id after `put_run` returned.
#[test]
fn kill9_writer() {
    let Some((dir, rt)) = child_process(WRITER_ENV) else {
        return;
    };
    rt.block_on(async move {
        let store = Arc::new(SledStore::open(&dir).unwrap());
        let acct = Uuid::parse_str(&std::env::var("PIPECAT_STORE_KILL9_ACCOUNT").unwrap()).unwrap();
        let wf = Uuid::now_v7();
        for _ in 0..8 {
            let store = store.clone();
            tokio::spawn(async move {
                loop {
                    let r = run(acct, wf, RunStatus::Success);
                    // As an invocation does: count the run, then record it durably.
                    if let Err(e) = store.reserve_run(acct, KILL9_MONTH, u64::MAX).await {
                        eprintln!("writer failed: {e}");
                        std::process::exit(1);
                    }
                    if let Err(e) = store.put_run(&r).await {
                        // Ends the process, so the parent sees EOF instead of waiting forever.
                        eprintln!("writer failed: {e}");
                        std::process::exit(1);
                    }
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "{ACK}{}", r.run_id).unwrap();
                    out.flush().unwrap();
                }
            });
        }
        // Runs until the parent kills the process.
        std::future::pending::<()>().await;
    });
}

#[test]
fn acknowledged_runs_survive_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let acct = Uuid::now_v7();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "kill9_writer", "--nocapture", "--test-threads=1"])
        .env(WRITER_ENV, &dir)
        .env("PIPECAT_STORE_KILL9_ACCOUNT", acct.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut acked = Vec::new();
    // Kill mid-burst, after a few hundred acknowledgements.
    while acked.len() < 300 {
        let line = lines.next().expect("the writer ended early").unwrap();
        if let Some(id) = line.strip_prefix(ACK) {
            acked.push(Uuid::parse_str(id).unwrap());
        }
    }
    child.kill().unwrap(); // SIGKILL
    // Lines already in the pipe were acknowledged before the kill too.
    for line in lines {
        let Ok(line) = line else { break };
        if let Some(id) = line
            .strip_prefix(ACK)
            .and_then(|id| Uuid::parse_str(id).ok())
        {
            acked.push(id);
        }
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "the writer was killed");

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = SledStore::open(&dir).expect("the store reopens after kill -9");
        let mut missing = 0;
        for id in &acked {
            if store.get_run(acct, *id).await.unwrap().is_none() {
                missing += 1;
            }
        }
        assert_eq!(
            missing,
            0,
            "{missing} of {} acknowledged runs lost",
            acked.len()
        );
        let counted = store.runs_used(acct, KILL9_MONTH).await.unwrap();
        assert!(
            counted >= acked.len() as u64,
            "the monthly counter ({counted}) lost reservations of acknowledged runs ({})",
            acked.len()
        );
    });
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// A power cut loses what sled had not flushed; the run log must bring it back. Simulated by pairing
/// sled's files as they were at open (flushed by the opening checkpoint) with the log written after.
#[test]
fn runs_and_counters_only_in_the_run_log_are_replayed_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    let live = tmp.path().join("live");
    let crashed = tmp.path().join("crashed");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let acct = Uuid::now_v7();
    let wf = Uuid::now_v7();
    let runs = rt.block_on(async {
        let store = SledStore::open(&live).unwrap();
        // sled as a power cut would leave it: nothing after the opening checkpoint.
        copy_dir(&live, &crashed);
        let mut runs = Vec::new();
        for _ in 0..50 {
            store
                .reserve_run(acct, KILL9_MONTH, u64::MAX)
                .await
                .unwrap();
            let r = run(acct, wf, RunStatus::Success);
            store.put_run(&r).await.unwrap();
            runs.push(r.run_id);
        }
        fs::copy(
            live.join("pipecat-wal.log"),
            crashed.join("pipecat-wal.log"),
        )
        .unwrap();
        runs
    });
    rt.block_on(async {
        let store = SledStore::open(&crashed).expect("the crashed copy opens");
        for id in &runs {
            assert!(
                store.get_run(acct, *id).await.unwrap().is_some(),
                "run {id} was acknowledged but not replayed"
            );
        }
        let listed = store
            .list_runs(
                acct,
                Some(wf),
                pipecat_store::RunQuery {
                    limit: 100,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(
            listed.runs.len(),
            runs.len(),
            "the workflow index is replayed too"
        );
        assert_eq!(store.runs_used(acct, KILL9_MONTH).await.unwrap(), 50);
    });
    // The replay was checkpointed: a second open finds the same, with an empty log.
    rt.block_on(async {
        let store = SledStore::open(&crashed).unwrap();
        assert_eq!(store.runs_used(acct, KILL9_MONTH).await.unwrap(), 50);
    });
}
