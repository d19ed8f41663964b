//! A per-test watchdog: a test still running after a generous limit (a hang: a blocked runtime, a store
//! that never closes, a request that is never answered) ends the test process with a message naming it
//! and the state of every thread, instead of holding CI until the job's own timeout.
//!
//! Call [`arm`] first thing in a test. It watches the test's thread (libtest runs each test on a thread
//! named after it) until that thread ends, which is after `#[tokio::test]` has dropped the test's runtime:
//! a hang while the runtime shuts down (a task or a `Drop` that never finishes) is caught too, which a
//! `tokio::time::timeout` around the test body would not see. [`assert_every_test_arms`] checks that a
//! file's tests all do.

use std::cell::RefCell;
use std::io::Write as _;
use std::sync::mpsc;
use std::time::Duration;

/// How long a test may run before the watchdog ends the process. Far above any test's normal time on a
/// loaded CI machine; `PIPECAT_TEST_WATCHDOG_SECS` overrides it.
pub const DEFAULT_LIMIT: Duration = Duration::from_secs(300);

thread_local! {
    /// The armed watchdog of this test thread; dropping the sender (when the thread ends) disarms it.
    static ARMED: RefCell<Option<mpsc::Sender<()>>> = const { RefCell::new(None) };
}

/// Arms the watchdog for the calling test, until the test's thread ends. Arming twice does nothing.
pub fn arm() {
    ARMED.with(|armed| {
        let mut armed = armed.borrow_mut();
        if armed.is_some() {
            return;
        }
        let test = std::thread::current()
            .name()
            .unwrap_or("<unnamed>")
            .to_string();
        let limit = limit();
        let (disarm, disarmed) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("test-watchdog".into())
            .spawn(move || {
                if let Err(mpsc::RecvTimeoutError::Timeout) = disarmed.recv_timeout(limit) {
                    fire(&test, limit);
                }
            })
            .expect("starting the test watchdog");
        *armed = Some(disarm);
    });
}

fn limit() -> Duration {
    std::env::var("PIPECAT_TEST_WATCHDOG_SECS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .map_or(DEFAULT_LIMIT, Duration::from_secs)
}

/// Reports the hung test, kills the processes it started (a server binary would outlive the test process
/// and keep CI's output pipe open) and aborts.
fn fire(test: &str, limit: Duration) -> ! {
    let mut report = format!(
        "\n\nWATCHDOG: test `{test}` is still running after {} s: it hangs. Aborting the test process \
         (the limit is PIPECAT_TEST_WATCHDOG_SECS).\nThreads (name, state, kernel wait channel):\n",
        limit.as_secs()
    );
    report.push_str(&threads());
    report.push_str(&kill_children());
    // Straight to the process's stderr: `eprintln!` in a test is captured, and shown only when the test
    // ends, which this one does not.
    let _ = std::io::stderr().write_all(report.as_bytes());
    std::process::abort();
}

/// One line per thread of this process, from `/proc/self/task`.
fn threads() -> String {
    let read = |tid: &str, file: &str| {
        std::fs::read_to_string(format!("/proc/self/task/{tid}/{file}")).unwrap_or_default()
    };
    let mut out = String::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return "  (no /proc/self/task)\n".into();
    };
    for task in tasks.flatten() {
        let tid = task.file_name().to_string_lossy().to_string();
        let stat = read(&tid, "stat");
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or("?")
            .to_string();
        out.push_str(&format!(
            "  {tid:>7} {:<16} {state} {}\n",
            read(&tid, "comm").trim(),
            read(&tid, "wchan").trim()
        ));
    }
    out
}

/// Kills (SIGKILL) this process's children; returns what it did.
fn kill_children() -> String {
    let me = std::process::id().to_string();
    let children: Vec<String> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_string_lossy().to_string();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let ppid = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?;
            (ppid == me).then_some(pid)
        })
        .collect();
    if children.is_empty() {
        return String::new();
    }
    let _ = std::process::Command::new("kill")
        .arg("-KILL")
        .args(&children)
        .status();
    format!("Killed child processes {children:?}.\n")
}

/// Panics naming every `#[tokio::test]` of `source` (a test file's text, `file` its name) whose body does
/// not start with `common::watchdog::arm();`.
pub fn assert_every_test_arms(file: &str, source: &str) {
    let mut missing = Vec::new();
    let mut lines = source.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if !line.starts_with("#[tokio::test") {
            continue;
        }
        let Some(signature) = lines.by_ref().find(|l| l.starts_with("async fn ")) else {
            break;
        };
        let first = lines.by_ref().find(|l| !l.is_empty()).unwrap_or_default();
        if first != "common::watchdog::arm();" {
            missing.push(signature.trim_start_matches("async fn ").to_string());
        }
    }
    assert!(
        missing.is_empty(),
        "tests of {file} that do not start with `common::watchdog::arm();`: {missing:#?}"
    );
}
