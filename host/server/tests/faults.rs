//! Process-level faults and overload: a crash loop of `kill -9`, a read-only and a full data directory,
//! twice the concurrency limit, slow-header clients, WebSocket clients that flood or never read, and
//! signals during the drain. Most tests run the real binary on port 0 (`common/process.rs`).
//!
//! Every test starts with `common::watchdog::arm();`: one that hangs ends the test process with a message
//! naming it (after `common::watchdog::DEFAULT_LIMIT`) rather than holding CI.

mod common;
#[path = "common/process.rs"]
mod process;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{TestServer, ws_next};
use futures::{SinkExt as _, StreamExt as _};
use pipecat_fake_llm::{FakeLlm, Reply};
use process::{ADMIN, Binary, refuses};
use rand::Rng as _;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

/// Status and JSON body; `Err` when the request failed (connection refused or reset, timeout).
async fn try_call(req: reqwest::RequestBuilder) -> Result<(StatusCode, Value), reqwest::Error> {
    let resp = req.send().await?;
    let status = resp.status();
    let bytes = resp.bytes().await?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

async fn call(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    try_call(req).await.expect("request answered")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

fn template_doc(name: &str) -> Value {
    json!({"name": name, "nodes": [{"id": "r", "type": "template", "template": "got {{ input }}"}],
        "edges": [], "output": "r"})
}

/// An account with a high run limit and a key; returns `(account, key)`.
async fn account(http: &reqwest::Client, url: &str) -> (String, String) {
    let (st, acct) = call(
        http.post(format!("{url}/v1/accounts"))
            .header("x-api-key", ADMIN)
            .json(&json!({"name": "faults", "plan": "free", "monthly_run_limit": 1_000_000})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{acct}");
    let account = acct["id"].as_str().expect("account").to_string();
    let (st, k) = call(
        http.post(format!("{url}/v1/accounts/{account}/keys"))
            .header("x-api-key", ADMIN)
            .json(&json!({"name": "k"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{k}");
    (account, k["key"].as_str().expect("key").to_string())
}

/// Creates and publishes a workflow; returns its id.
async fn publish(http: &reqwest::Client, url: &str, key: &str, doc: &Value) -> String {
    let (st, w) = call(
        http.post(format!("{url}/v1/workflows"))
            .header("x-api-key", key)
            .json(doc),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{w}");
    let id = w["id"].as_str().expect("workflow").to_string();
    let (st, p) = call(
        http.post(format!("{url}/v1/workflows/{id}/publish"))
            .header("x-api-key", key)
            .json(&json!({})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    id
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|v| v.split_whitespace().next() == Some("0"))
        })
        .unwrap_or(false)
}

/// `mount -t tmpfs -o <options> tmpfs <dir>`; `Err(why)` when not permitted.
fn mount_tmpfs(dir: &Path, options: &str) -> Result<(), String> {
    let out = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", options, "tmpfs"])
        .arg(dir)
        .output()
        .map_err(|e| format!("cannot run mount: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

fn remount(dir: &Path, options: &str) {
    let ok = std::process::Command::new("mount")
        .args(["-o", &format!("remount,{options}")])
        .arg(dir)
        .status()
        .expect("mount")
        .success();
    assert!(ok, "remount {options} failed");
}

/// Unmounts on drop (lazily, so a failing test does not leave a busy mount behind).
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

// ---------------------------------------------------------------------------------------------------
// Crash loop
// ---------------------------------------------------------------------------------------------------

#[derive(Default)]
struct Acked {
    runs: Vec<String>,
    keys: Vec<(String, String)>,
    workflows: Vec<String>,
    attempted_invokes: u64,
}

/// Writes until the server goes away: invokes (mostly), keys and workflows, recording what was
/// acknowledged.
async fn writer(
    url: String,
    account: String,
    key: String,
    workflow: String,
    acked: Arc<Mutex<Acked>>,
    seed: u64,
) {
    use rand::SeedableRng as _;
    let http = client();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for i in 0u64.. {
        let op = rng.gen_range(0..10);
        if op < 7 {
            acked.lock().unwrap().attempted_invokes += 1;
            let req = http
                .post(format!("{url}/invoke/{workflow}/invoke"))
                .header("x-api-key", &key)
                .json(&json!({"input": format!("w{seed}-{i}")}));
            match try_call(req).await {
                Ok((StatusCode::OK, body)) => {
                    assert_eq!(body["status"], "success", "{body}");
                    let id = body["run_id"].as_str().expect("run id").to_string();
                    acked.lock().unwrap().runs.push(id);
                }
                Ok((status, body)) => panic!("invoke answered {status}: {body}"),
                Err(_) => return,
            }
        } else if op < 9 {
            let req = http
                .post(format!("{url}/v1/accounts/{account}/keys"))
                .header("x-api-key", ADMIN)
                .json(&json!({"name": format!("k{seed}-{i}")}));
            match try_call(req).await {
                Ok((StatusCode::CREATED, body)) => {
                    let id = body["id"].as_str().expect("key id").to_string();
                    let secret = body["key"].as_str().expect("key").to_string();
                    acked.lock().unwrap().keys.push((id, secret));
                }
                Ok((status, body)) => panic!("key creation answered {status}: {body}"),
                Err(_) => return,
            }
        } else {
            let req = http
                .post(format!("{url}/v1/workflows"))
                .header("x-api-key", &key)
                .json(&template_doc(&format!("wf{seed}-{i}")));
            match try_call(req).await {
                Ok((StatusCode::CREATED, body)) => {
                    let id = body["id"].as_str().expect("workflow id").to_string();
                    acked.lock().unwrap().workflows.push(id);
                }
                Ok((status, body)) => panic!("workflow creation answered {status}: {body}"),
                Err(_) => return,
            }
        }
    }
}

/// Every item of a paginated list (`{"<field>": [...], "next_cursor"}`), asserting each page is a 200.
async fn all_pages(
    http: &reqwest::Client,
    url: &str,
    path: &str,
    key: &str,
    field: &str,
) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut req = http
            .get(format!("{url}{path}"))
            .header("x-api-key", key)
            .query(&[("limit", "200")]);
        if let Some(c) = &cursor {
            req = req.query(&[("cursor", c.as_str())]);
        }
        let (st, page) = call(req).await;
        assert_eq!(st, StatusCode::OK, "{path}: {page}");
        items.extend(page[field].as_array().expect("list").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return items,
        }
    }
}

/// 50 × (restart, a burst of concurrent writes, `kill -9` at a random moment of it), then everything that
/// was acknowledged is there and every stored record reads back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loop_of_kill_9_loses_nothing_acknowledged() {
    common::watchdog::arm();
    const CYCLES: u64 = 50;
    const WRITERS: u64 = 4;
    let dir = tempfile::tempdir().expect("dir");
    let started = Instant::now();
    let mut server = Binary::start(dir.path(), None, &[]);
    let http = client();
    let (account, key) = account(&http, &server.url).await;
    let workflow = publish(&http, &server.url, &key, &template_doc("t")).await;
    let acked = Arc::new(Mutex::new(Acked::default()));
    let mut rng = rand::thread_rng();

    for cycle in 0..CYCLES {
        let before = acked.lock().unwrap().runs.len();
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                tokio::spawn(writer(
                    server.url.clone(),
                    account.clone(),
                    key.clone(),
                    workflow.clone(),
                    acked.clone(),
                    cycle * WRITERS + w,
                ))
            })
            .collect();
        // Wait for the burst to be under way, then kill at a random moment of it.
        let deadline = Instant::now() + Duration::from_secs(10);
        while acked.lock().unwrap().runs.len() == before {
            assert!(
                Instant::now() < deadline,
                "no write acknowledged in cycle {cycle}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..40))).await;
        server.kill_9();
        for w in writers {
            w.await.expect("writer");
        }
        server = Binary::start(dir.path(), None, &[]);
    }

    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let url = &server.url;
    for run_id in &acked.runs {
        let (st, run) = call(
            http.get(format!("{url}/v1/runs/{run_id}"))
                .header("x-api-key", &key),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "acknowledged run {run_id} lost: {run}");
        assert_eq!(run["status"], "success", "{run}");
    }
    for (key_id, secret) in &acked.keys {
        let (st, body) = call(
            http.get(format!("{url}/v1/workflows"))
                .header("x-api-key", secret),
        )
        .await;
        assert_eq!(
            st,
            StatusCode::OK,
            "acknowledged key {key_id} does not work: {body}"
        );
    }
    for id in &acked.workflows {
        let (st, body) = call(
            http.get(format!("{url}/v1/workflows/{id}"))
                .header("x-api-key", &key),
        )
        .await;
        assert_eq!(
            st,
            StatusCode::OK,
            "acknowledged workflow {id} lost: {body}"
        );
    }

    // Nothing half-written: every stored record of each kind reads back, singly too.
    let runs = all_pages(&http, url, "/v1/runs", &key, "runs").await;
    for run in &runs {
        let id = run["run_id"]
            .as_str()
            .or(run["id"].as_str())
            .expect("run id");
        let (st, body) = call(
            http.get(format!("{url}/v1/runs/{id}"))
                .header("x-api-key", &key),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "stored run {id} unreadable: {body}");
    }
    let (st, keys) = call(
        http.get(format!("{url}/v1/accounts/{account}/keys"))
            .header("x-api-key", ADMIN),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{keys}");
    let listed = keys.to_string();
    for (key_id, _) in &acked.keys {
        assert!(listed.contains(key_id.as_str()), "key {key_id} not listed");
    }
    let workflows = all_pages(&http, url, "/v1/workflows", &key, "workflows").await;
    for w in &workflows {
        let id = w["id"].as_str().expect("workflow id");
        let (st, body) = call(
            http.get(format!("{url}/v1/workflows/{id}"))
                .header("x-api-key", &key),
        )
        .await;
        assert_eq!(
            st,
            StatusCode::OK,
            "stored workflow {id} unreadable: {body}"
        );
    }
    for id in &acked.workflows {
        assert!(
            workflows.iter().any(|w| w["id"] == id.as_str()),
            "{id} not listed"
        );
    }

    // The monthly counter: at least every acknowledged run, at least every stored run record, at most
    // every attempt.
    let (st, acct) = call(
        http.get(format!("{url}/v1/accounts/{account}"))
            .header("x-api-key", ADMIN),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{acct}");
    let used = acct["runs_this_month"].as_u64().expect("runs_this_month");
    assert!(
        used >= acked.runs.len() as u64,
        "counter {used} < {} acknowledged runs",
        acked.runs.len()
    );
    assert!(
        used >= runs.len() as u64,
        "counter {used} < {} stored runs",
        runs.len()
    );
    assert!(
        used <= acked.attempted_invokes,
        "counter {used} > {} attempts",
        acked.attempted_invokes
    );
    let (st, _) = call(http.get(format!("{url}/readyz"))).await;
    assert_eq!(st, StatusCode::OK);
    eprintln!(
        "crash loop: {CYCLES} kills, {} runs, {} keys, {} workflows acknowledged; {} runs stored, counter {used}, {} attempts; {:.1} s",
        acked.runs.len(),
        acked.keys.len(),
        acked.workflows.len(),
        runs.len(),
        acked.attempted_invokes,
        started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------------------------
// Read-only and full data directories
// ---------------------------------------------------------------------------------------------------

fn assert_refused_cleanly(failure: &process::StartFailure, dir: &Path) {
    assert!(
        !failure.status.success(),
        "exit status {:?}",
        failure.status
    );
    assert!(
        failure.status.code().is_some(),
        "killed by a signal: {:?}",
        failure.status
    );
    let stderr = &failure.stderr;
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "a panic: {stderr}"
    );
    assert!(
        stderr.contains("not writable") && stderr.contains(&dir.display().to_string()),
        "no clear message naming the directory: {stderr}"
    );
}

/// A data directory the server cannot write to: it refuses to start (one clear line naming the
/// directory, exit status 4, no panic) rather than serve with `/readyz` failing, both for a fresh directory
/// and for an existing store; with the directory writable again the data is all there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_data_dir_is_refused_at_start_with_a_clear_message() {
    common::watchdog::arm();
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("data dir");
    let mut _mount = None;
    if is_root() {
        // Root ignores permission bits: make the file system itself read-only.
        if let Err(why) = mount_tmpfs(&data, "size=64m") {
            eprintln!("cannot mount a tmpfs ({why}): checking a directory of /proc instead");
            let fixed = Path::new("/proc/self/fdinfo");
            let failure = Binary::try_start(fixed, None, &[]).err().expect("refused");
            assert_refused_cleanly(&failure, fixed);
            return;
        }
        _mount = Some(Mount(data.clone()));
    }
    let make_read_only = |ro: bool| {
        if is_root() {
            remount(&data, if ro { "ro" } else { "rw" });
        } else {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = if ro { 0o555 } else { 0o755 };
            std::fs::set_permissions(&data, std::fs::Permissions::from_mode(mode)).expect("chmod");
        }
    };

    // A fresh, empty directory.
    make_read_only(true);
    let failure = Binary::try_start(&data, None, &[]).err().expect("refused");
    assert_refused_cleanly(&failure, &data);
    // `pipecat serve`'s exit status for a start-up failure.
    assert_eq!(failure.status.code(), Some(4));

    // An existing store.
    make_read_only(false);
    let server = Binary::start(&data, None, &[]);
    let http = client();
    let (_, key) = account(&http, &server.url).await;
    let id = publish(&http, &server.url, &key, &template_doc("t")).await;
    let (st, run) = call(
        http.post(format!("{}/invoke/{id}/invoke", server.url))
            .header("x-api-key", &key)
            .json(&json!({"input": 1})),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    server.signal("TERM");
    let mut server = server;
    assert_eq!(
        server
            .wait_exit(Duration::from_secs(30))
            .expect("exits")
            .code(),
        Some(0)
    );
    make_read_only(true);
    let failure = Binary::try_start(&data, None, &[]).err().expect("refused");
    assert_refused_cleanly(&failure, &data);

    make_read_only(false);
    let server = Binary::start(&data, None, &[]);
    let run_id = run["run_id"].as_str().expect("run id");
    let (st, body) = call(
        http.get(format!("{}/v1/runs/{run_id}", server.url))
            .header("x-api-key", &key),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
}

/// The store's tmpfs fills up: writes answer a 5xx with one stable code (no panic, no hang), `/readyz`
/// fails; restarted with space, everything acknowledged before is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_writes_cleanly_and_loses_nothing_acknowledged() {
    common::watchdog::arm();
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("data dir");
    if let Err(why) = mount_tmpfs(&data, "size=8m") {
        eprintln!("SKIPPED: cannot mount a tmpfs to fill (needs root / CAP_SYS_ADMIN): {why}");
        return;
    }
    let _mount = Mount(data.clone());
    let mut server = Binary::start(&data, None, &[]);
    let http = client();
    let (account_id, key) = account(&http, &server.url).await;
    let id = publish(&http, &server.url, &key, &template_doc("t")).await;

    // Runs acknowledged before the disk fills must survive it.
    let mut acked = Vec::new();
    for i in 0..10 {
        let (st, body) = call(
            http.post(format!("{}/invoke/{id}/invoke", server.url))
                .header("x-api-key", &key)
                .json(&json!({"input": format!("before {i}")})),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{body}");
        acked.push(body["run_id"].as_str().expect("run id").to_string());
    }

    // Fill the file system, leaving the store only what its files have already allocated.
    let filler = data.join("filler");
    {
        use std::io::Write as _;
        let mut f = std::fs::File::create(&filler).expect("filler");
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }

    let mut failures = Vec::new();
    // Records under and over sled's blob threshold (~128 KiB): a blob file that cannot be created wedged
    // every later flush of sled 0.34 (the store now refuses such values without room for them).
    let sizes = ["x".repeat(32 * 1024), "x".repeat(200 * 1024)];
    for i in 0..2000 {
        let big = &sizes[i % 2];
        let started = Instant::now();
        let (st, body) = call(
            http.post(format!("{}/invoke/{id}/invoke", server.url))
                .header("x-api-key", &key)
                .json(&json!({"input": format!("{i}{big}")})),
        )
        .await;
        assert!(started.elapsed() < Duration::from_secs(10), "a write hung");
        if st == StatusCode::OK && body["status"] == "success" {
            acked.push(body["run_id"].as_str().expect("run id").to_string());
        } else {
            assert!(st.is_server_error(), "{st}: {body}");
            failures.push((st, body["error"]["code"].as_str().unwrap_or("").to_string()));
            if failures.len() >= 5 {
                break;
            }
        }
    }
    assert!(!failures.is_empty(), "the disk never filled up");
    // Other writes answer: small ones may still fit in the space the store's files already hold (large
    // values are refused while less than 8 MiB is free); a failure is the same one.
    let (st, body) = call(
        http.post(format!("{}/v1/accounts/{account_id}/keys", server.url))
            .header("x-api-key", ADMIN)
            .json(&json!({"name": "late"})),
    )
    .await;
    if !st.is_success() {
        assert!(st.is_server_error(), "{st}: {body}");
        failures.push((st, body["error"]["code"].as_str().unwrap_or("").to_string()));
    }
    let (first_status, first_code) = failures[0].clone();
    assert_eq!(
        (first_status, first_code.as_str()),
        (StatusCode::INSUFFICIENT_STORAGE, "storage_full")
    );
    for (st, code) in &failures {
        assert_eq!(
            (*st, code.as_str()),
            (first_status, first_code.as_str()),
            "unstable error"
        );
    }
    // A streamed invoke is refused the same way before its stream starts (were it accepted and its record
    // then refused, its stream would end with an error event of the same code, never `internal_error`).
    let streamed = http
        .post(format!("{}/invoke/{id}/invoke", server.url))
        .header("x-api-key", &key)
        .header("accept", "text/event-stream")
        .json(&json!({"input": format!("streamed {}", sizes[1])}))
        .send()
        .await
        .expect("streamed invoke");
    let streamed_status = streamed.status();
    let events = streamed.text().await.expect("the stream ends");
    if streamed_status == StatusCode::OK {
        assert!(
            events.contains(r#""code":"storage_full""#) && !events.contains("internal_error"),
            "{events}"
        );
    } else {
        assert_eq!(
            streamed_status,
            StatusCode::INSUFFICIENT_STORAGE,
            "{events}"
        );
    }
    let (st, _) = call(http.get(format!("{}/readyz", server.url))).await;
    assert_eq!(
        st,
        StatusCode::SERVICE_UNAVAILABLE,
        "/readyz with a full disk"
    );
    let (st, _) = call(http.get(format!("{}/healthz", server.url))).await;
    assert_eq!(st, StatusCode::OK);
    eprintln!(
        "disk full: {} runs acknowledged, then {first_status} {first_code}; a streamed run: {streamed_status}",
        acked.len()
    );

    // Make room and restart (a crash: the full disk may make a graceful flush fail).
    server.kill_9();
    std::fs::remove_file(&filler).expect("remove filler");
    let server = Binary::start(&data, None, &[]);
    for run_id in &acked {
        let (st, body) = call(
            http.get(format!("{}/v1/runs/{run_id}", server.url))
                .header("x-api-key", &key),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "acknowledged run {run_id} lost: {body}");
    }
    let (st, _) = call(http.get(format!("{}/readyz", server.url))).await;
    assert_eq!(st, StatusCode::OK);
    let (st, body) = call(
        http.post(format!("{}/invoke/{id}/invoke", server.url))
            .header("x-api-key", &key)
            .json(&json!({"input": "again"})),
    )
    .await;
    assert_eq!(
        (st, &body["status"]),
        (StatusCode::OK, &json!("success")),
        "{body}"
    );
}

// ---------------------------------------------------------------------------------------------------
// Overload
// ---------------------------------------------------------------------------------------------------

/// Waits (up to 20 s) until a run's request has reached the fake provider.
async fn reached_provider(llm: &FakeLlm) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while llm.request_count() == 0 {
        assert!(
            Instant::now() < deadline,
            "the run did not reach the provider"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn llm_config(dir: &Path, llm: &FakeLlm, extra: &str) -> std::path::PathBuf {
    let config = dir.join("pipecat.toml");
    std::fs::write(
        &config,
        format!(
            "[[providers]]\nname = \"openai\"\nkind = \"openai\"\nbase_url = \"{}\"\n{extra}",
            llm.openai_base_url()
        ),
    )
    .expect("config");
    config
}

fn llm_doc() -> Value {
    json!({"name": "slow", "nodes": [{"id": "l", "type": "llm", "provider": "openai", "model": "m", "prompt": "{{ input }}"}],
        "edges": [], "output": "l"})
}

/// Twice `max_concurrent_runs` at once against a slow provider: exactly the limit is accepted, the rest
/// get a fast `503 overloaded` with `Retry-After`; thousands more refusals do not grow resident memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twice_the_concurrency_limit_gets_fast_503s_and_memory_stays_bounded() {
    common::watchdog::arm();
    const LIMIT: usize = 4;
    let dir = tempfile::tempdir().expect("dir");
    let llm = FakeLlm::start().await;
    llm.set_default(Reply::Delayed(
        Duration::from_secs(120),
        Box::new(Reply::text("late")),
    ));
    let config = llm_config(
        dir.path(),
        &llm,
        &format!("[limits]\nmax_concurrent_runs = {LIMIT}\n"),
    );
    let server = Binary::start(&dir.path().join("data"), Some(&config), &[]);
    let http = client();
    let (_, key) = account(&http, &server.url).await;
    let id = publish(&http, &server.url, &key, &llm_doc()).await;
    let url = format!("{}/invoke/{id}/invoke", server.url);

    let requests: Vec<_> = (0..2 * LIMIT)
        .map(|i| {
            let req = http
                .post(&url)
                .header("x-api-key", &key)
                .json(&json!({"input": i}));
            tokio::spawn(async move {
                let started = Instant::now();
                let resp = req.send().await;
                (started.elapsed(), resp)
            })
        })
        .collect();
    // The accepted ones hang on the provider; wait until all slots are taken.
    let deadline = Instant::now() + Duration::from_secs(20);
    while llm.request_count() < LIMIT {
        assert!(Instant::now() < deadline, "runs did not reach the provider");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut refused = 0;
    let mut pending = Vec::new();
    for r in requests {
        if r.is_finished() {
            let (elapsed, resp) = r.await.expect("task");
            let resp = resp.expect("answered");
            assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert!(resp.headers().contains_key("retry-after"));
            assert!(elapsed < Duration::from_secs(5), "slow 503: {elapsed:?}");
            refused += 1;
        } else {
            pending.push(r);
        }
    }
    // The refusals may still be on their way; every request not hanging on the provider is a 503.
    let deadline = Instant::now() + Duration::from_secs(5);
    while pending.iter().filter(|r| r.is_finished()).count() + refused < LIMIT {
        assert!(Instant::now() < deadline, "refusals did not come fast");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut hanging = 0;
    for r in pending {
        if r.is_finished() {
            let (_, resp) = r.await.expect("task");
            assert_eq!(
                resp.expect("answered").status(),
                StatusCode::SERVICE_UNAVAILABLE
            );
            refused += 1;
        } else {
            hanging += 1;
            r.abort();
        }
    }
    assert_eq!((hanging, refused), (LIMIT, LIMIT));
    assert_eq!(llm.request_count(), LIMIT);

    // Sustained overload: waves of 2 × limit refusals.
    let rss_before = server.rss_kib();
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for _ in 0..200 {
        let wave = (0..2 * LIMIT).map(|i| {
            let req = http
                .post(&url)
                .header("x-api-key", &key)
                .json(&json!({"input": i}));
            async move {
                let t = Instant::now();
                let (st, body) = call(req).await;
                (t.elapsed(), st, body)
            }
        });
        for (elapsed, st, body) in futures::future::join_all(wave).await {
            assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{body}");
            assert_eq!(body["error"]["code"], "overloaded");
            slowest = slowest.max(elapsed);
        }
    }
    let rss_after = server.rss_kib();
    eprintln!(
        "overload: {} refusals in {:.1} s, slowest {slowest:?}; VmRSS {rss_before} → {rss_after} KiB",
        200 * 2 * LIMIT,
        started.elapsed().as_secs_f64()
    );
    assert!(
        slowest < Duration::from_secs(5),
        "slowest refusal {slowest:?}"
    );
    assert!(
        rss_after < rss_before + 32 * 1024,
        "resident memory grew from {rss_before} to {rss_after} KiB"
    );
    assert_eq!(
        llm.request_count(),
        LIMIT,
        "a refused request reached the provider"
    );
}

// ---------------------------------------------------------------------------------------------------
// Slow-header clients
// ---------------------------------------------------------------------------------------------------

/// Reads until the server closes; the time since `started` when it did, or `None` after `within` (since
/// `started`).
async fn closed_within(
    stream: &mut tokio::net::TcpStream,
    started: Instant,
    within: Duration,
) -> Option<Duration> {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at((started + within).into(), stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

/// A client sending half a request line and stalling, one sending nothing and one dribbling a header a
/// byte at a time are all cut off after `header_read_timeout_secs`, while normal requests are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_header_clients_are_cut_off_after_the_header_read_timeout() {
    common::watchdog::arm();
    let s = TestServer::start("[limits]\nheader_read_timeout_secs = 1\n").await;
    let addr = s.server.addr;

    let mut half = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let half_opened = Instant::now();
    half.write_all(b"GET /healthz HT").await.expect("write");
    let mut silent = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let silent_opened = Instant::now();
    let mut dribble = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let dribbler = tokio::spawn(async move {
        let started = Instant::now();
        // A deliberately slow client: one header byte every 100 ms, never finishing.
        for b in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "
            .iter()
            .chain([b'a'; 200].iter())
        {
            if dribble.write_all(&[*b]).await.is_err() {
                return Some(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    });

    // Normal traffic is served meanwhile.
    let ok = s.send(s.http.get(format!("{}/healthz", s.url))).await;
    assert_eq!(ok.status, StatusCode::OK);

    let t = closed_within(&mut half, half_opened, Duration::from_secs(10))
        .await
        .expect("the half request line was not cut off within 10 s");
    assert!(t >= Duration::from_millis(800), "cut off too early: {t:?}");
    let t = closed_within(&mut silent, silent_opened, Duration::from_secs(10))
        .await
        .expect("the silent connection was not cut off within 10 s");
    assert!(t >= Duration::from_millis(800), "cut off too early: {t:?}");
    let t = dribbler
        .await
        .expect("dribbler")
        .expect("the dribbling client was not cut off");
    assert!(t < Duration::from_secs(10), "dribbler cut off after {t:?}");

    let ok = s.send(s.http.get(format!("{}/healthz", s.url))).await;
    assert_eq!(ok.status, StatusCode::OK);
}

#[test]
fn every_test_arms_the_watchdog() {
    common::watchdog::assert_every_test_arms("faults.rs", include_str!("faults.rs"));
}

/// Dropping a `TestServer` stops the server and deletes its data directory only once the store is
/// closed: a run that finishes after the test is done is recorded first. Deleting the directory under
/// the running server made `a_websocket_client_that_never_reads_…` hang (and the next in-process test
/// with it): a run recorded after the deletion, a value sled keeps in a file of its own, left the store's
/// last flush waiting forever (see `StopOnDrop` in `common/mod.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_test_server_records_its_last_run_before_its_directory_goes() {
    common::watchdog::arm();
    let llm = FakeLlm::start().await;
    // Over sled's blob threshold (~128 KiB), as the runs of the non-reading WebSocket client are.
    llm.set_default(Reply::Delayed(
        Duration::from_millis(300),
        Box::new(Reply::text("z".repeat(300 * 1024))),
    ));
    let s = TestServer::start(&format!(
        "[[providers]]\nname = \"openai\"\nkind = \"openai\"\nbase_url = \"{}\"\n",
        llm.openai_base_url()
    ))
    .await;
    let (_, key) = s.account(None).await;
    let id = s.publish(&key, &llm_doc()).await;
    let in_flight = tokio::spawn(
        client()
            .post(format!("{}/invoke/{id}/invoke", s.url))
            .header("x-api-key", &key)
            .json(&json!({"input": "late"}))
            .send(),
    );
    reached_provider(&llm).await;
    let store = Arc::downgrade(&s.server.state.store);
    let dir = s.dir.path().to_path_buf();
    drop(s);
    assert!(store.upgrade().is_none(), "the store is still open");
    assert!(!dir.exists(), "the data directory was left behind");
    let answer = in_flight.await.expect("task").expect("answered");
    assert_eq!(answer.status(), StatusCode::OK);
    let body: Value = answer.json().await.expect("JSON");
    assert_eq!(body["status"], "success", "{body}");
}

#[test]
fn the_header_read_timeout_has_a_safe_default() {
    let limits = pipecat::FileConfig::default().limits;
    assert_eq!(limits.header_read_timeout_secs, 30);
    assert!(limits.ws_send_timeout_secs > 0 && limits.ws_messages_per_second > 0.0);
}

// ---------------------------------------------------------------------------------------------------
// WebSocket abuse
// ---------------------------------------------------------------------------------------------------

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws_connect(url: &str, id: &str, key: &str) -> Socket {
    let url = format!("{}/invoke/{id}/ws", url.replacen("http", "ws", 1));
    let mut req = url.into_client_request().expect("request");
    req.headers_mut()
        .insert("x-api-key", key.parse().expect("header"));
    let (mut socket, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("connected");
    let hello = ws_next(&mut socket, Duration::from_secs(10)).await;
    assert_eq!(hello.expect("ready")["type"], "ready");
    socket
}

/// A client sending far more messages than `ws_messages_per_second` allows is closed with 1008 after
/// about one burst of answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_client_flooding_messages_is_closed_1008() {
    common::watchdog::arm();
    let s =
        TestServer::start("[limits]\nws_messages_per_second = 10\nws_message_burst = 20\n").await;
    let (_, key) = s.account(None).await;
    let id = s.publish(&key, &common::template_workflow()).await;
    let mut socket = ws_connect(&s.url, &id, &key).await;
    let flood_started = Instant::now();
    let mut sent = 0;
    for _ in 0..500 {
        if socket
            .send(Message::Text(json!({"type": "ping"}).to_string().into()))
            .await
            .is_err()
        {
            break;
        }
        sent += 1;
    }
    let mut pongs = 0;
    let code = loop {
        match ws_next(&mut socket, Duration::from_secs(10)).await {
            Ok(m) => {
                assert_eq!(m["type"], "pong");
                pongs += 1;
            }
            Err(code) => break code,
        }
    };
    assert_eq!(code, 1008, "after {pongs} pongs of {sent} pings");
    // The burst of 20, plus what refilled at 10 a second while the flood went on.
    let refilled = (flood_started.elapsed().as_secs_f64() * 10.0).ceil() as usize;
    assert!(
        (20..=20 + refilled + 1).contains(&pongs),
        "{pongs} pongs answered, {refilled} refilled"
    );

    // A well-behaved client on another connection is unaffected.
    let mut other = ws_connect(&s.url, &id, &key).await;
    other
        .send(Message::Text(json!({"input": "ok"}).to_string().into()))
        .await
        .expect("send");
    loop {
        let m = ws_next(&mut other, Duration::from_secs(10))
            .await
            .expect("event");
        if m["type"] == "run_finished" {
            assert_eq!(m["status"], "success");
            break;
        }
    }
}

/// A client that starts runs with large outputs and never reads is disconnected once a message has not
/// gone out for `ws_send_timeout_secs`; its runs end and give back their concurrency slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_client_that_never_reads_is_disconnected_and_frees_its_runs() {
    common::watchdog::arm();
    const SLOTS: usize = 8;
    let s = TestServer::start(&format!(
        "[limits]\nws_send_timeout_secs = 1\nmax_concurrent_runs = {SLOTS}\nws_messages_per_second = 0\n"
    ))
    .await;
    let (_, key) = s.account(None).await;
    // Just under the 1 MiB cap on rendered text.
    let big = "{{ input }}".repeat(60);
    let doc = json!({"name": "big", "nodes": [{"id": "r", "type": "template", "template": big}],
        "edges": [], "output": "r"});
    let id = s.publish(&key, &doc).await;

    // A small receive buffer so the server's writes back up quickly.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(16 * 1024).expect("rcvbuf");
    let tcp = socket.connect(s.server.addr).await.expect("connect");
    let url = format!("{}/invoke/{id}/ws", s.url.replacen("http", "ws", 1));
    let mut req = url.into_client_request().expect("request");
    req.headers_mut()
        .insert("x-api-key", key.parse().expect("header"));
    let (mut socket, _) = tokio_tungstenite::client_async(req, tcp)
        .await
        .expect("handshake");
    // Each run's events carry its ~1 MiB output. Keep starting runs and never read, until the server stops
    // taking messages (it is stuck writing to this client) or drops the connection.
    let input = "y".repeat(16 * 1024);
    socket
        .send(Message::Text(json!({"input": input}).to_string().into()))
        .await
        .expect("send");
    loop {
        let m = ws_next(&mut socket, Duration::from_secs(10))
            .await
            .expect("event");
        if m["type"] == "run_finished" {
            assert_eq!(m["status"], "success", "{}", m["error"]);
            assert!(m["output"].as_str().expect("output").len() >= 900 * 1024);
            break;
        }
    }
    let started = Instant::now();
    let mut sent = 0;
    loop {
        let message = Message::Text(
            json!({"input": format!("{sent}{input}")})
                .to_string()
                .into(),
        );
        match tokio::time::timeout(Duration::from_secs(3), socket.send(message)).await {
            Ok(Ok(())) => sent += 1,
            Ok(Err(_)) | Err(_) => break,
        }
        assert!(
            sent < 1000,
            "the server keeps taking runs without being read"
        );
    }
    // The server gives up on the client: its runs end and every slot is free again.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let free = s.server.state.run_slots.available_permits();
        if free == SLOTS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "runs still hold {} slots: the non-reading client stalls them",
            SLOTS - free
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "{sent} runs sent; slots free {:?} after the first",
        started.elapsed()
    );
    // The connection is gone: reading drains what was buffered, then ends without more events.
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(_)) = socket.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "the server did not drop the connection");
}

// ---------------------------------------------------------------------------------------------------
// Signals
// ---------------------------------------------------------------------------------------------------

/// SIGTERM with an idle WebSocket open: the socket gets a 1001 close frame and the process exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_open_websockets_with_1001_and_exits_0() {
    common::watchdog::arm();
    let dir = tempfile::tempdir().expect("dir");
    let mut server = Binary::start(dir.path(), None, &[]);
    let http = client();
    let (_, key) = account(&http, &server.url).await;
    let id = publish(&http, &server.url, &key, &template_doc("t")).await;
    let mut socket = ws_connect(&server.url, &id, &key).await;
    server.signal("TERM");
    assert_eq!(
        ws_next(&mut socket, Duration::from_secs(10)).await,
        Err(1001)
    );
    let status = tokio::task::spawn_blocking(move || server.wait_exit(Duration::from_secs(30)))
        .await
        .expect("join")
        .expect("exits");
    assert_eq!(status.code(), Some(0), "{status:?}");
}

/// A second SIGTERM while the first one drains a slow run exits at once with status 130 (documented in
/// `shutdown.rs`), without waiting for the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_during_the_drain_exits_at_once() {
    common::watchdog::arm();
    let dir = tempfile::tempdir().expect("dir");
    let llm = FakeLlm::start().await;
    llm.set_default(Reply::Delayed(
        Duration::from_secs(120),
        Box::new(Reply::text("late")),
    ));
    let config = llm_config(dir.path(), &llm, "");
    let mut server = Binary::start(&dir.path().join("data"), Some(&config), &[]);
    let http = client();
    let (_, key) = account(&http, &server.url).await;
    let id = publish(&http, &server.url, &key, &llm_doc()).await;
    let in_flight = tokio::spawn(
        http.post(format!("{}/invoke/{id}/invoke", server.url))
            .header("x-api-key", &key)
            .json(&json!({"input": "slow"}))
            .send(),
    );
    reached_provider(&llm).await;
    server.signal("TERM");
    // The first signal was taken: the listener is closed while the run drains.
    let addr = server.addr();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !refuses(&addr) {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        server.child.try_wait().expect("try_wait").is_none(),
        "exited before the drain"
    );
    let second = Instant::now();
    server.signal("TERM");
    let status = tokio::task::spawn_blocking(move || server.wait_exit(Duration::from_secs(10)))
        .await
        .expect("join")
        .expect("exits at once");
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert!(second.elapsed() < Duration::from_secs(5));
    assert!(
        in_flight.await.expect("task").is_err(),
        "the run was not cut off"
    );
}

// ---------------------------------------------------------------------------------------------------
// Hostile plugins (a measurement, not a default test: timing on shared machines is noisy)
// ---------------------------------------------------------------------------------------------------

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn victim_latencies(http: &reqwest::Client, url: &str, n: usize) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        let (st, body) = call(http.post(url).json(&json!({"input": i}))).await;
        assert_eq!(st, StatusCode::OK, "victim invoke: {body}");
        out.push(t.elapsed());
    }
    out.sort();
    out
}

/// Prints another account's invoke latency (p50/p99), quiet and while one account's plugins spin, eat
/// memory and flood output. Run with
/// `cargo test -p pipecat --test faults -- --ignored --nocapture hostile_plugins`.
/// `HOSTILE_N` sets the victim invokes per phase (400); `HOSTILE_TOOLS` the attacking tools, two loops
/// each (`spin,hog,big_output`; `bad_json` is a well-behaved fast tool, a control for the load of the
/// attacker's requests alone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: prints latencies, asserts only that everything was answered"]
async fn hostile_plugins_measurement() {
    common::watchdog::arm();
    let n: usize = std::env::var("HOSTILE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let tools = std::env::var("HOSTILE_TOOLS").unwrap_or_else(|_| "spin,hog,big_output".into());
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("pipecat.toml");
    std::fs::write(
        &config,
        "[limits]\nmax_concurrent_runs = 64\ntool_timeout_ms = 2000\ntool_fuel = 1000000000000000\n",
    )
    .expect("config");
    let server = Binary::start(&dir.path().join("data"), Some(&config), &[]);
    let http = client();
    let (_, attacker) = account(&http, &server.url).await;
    let (_, victim) = account(&http, &server.url).await;
    let bytes = std::fs::read(pipecat_test_components::SANDBOX_GUEST).expect("guest built");
    let (st, body) = call(
        http.post(format!("{}/v1/plugins?name=misbehave", server.url))
            .header("x-api-key", &attacker)
            .header("content-type", "application/wasm")
            .body(bytes),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let tool = |name: &str, args: Value| {
        json!({"name": name, "nodes": [{"id": "t", "type": "tool", "tool": format!("misbehave.{name}"), "arguments": args}],
            "edges": [], "output": "t"})
    };
    let mut hostile = Vec::new();
    for (name, args) in [
        ("spin", json!({})),
        ("hog", json!({})),
        ("big_output", json!({"bytes": 50_000_000})),
        ("bad_json", json!({})),
    ] {
        hostile.push((
            name,
            publish(&http, &server.url, &attacker, &tool(name, args)).await,
        ));
    }
    let target = publish(&http, &server.url, &victim, &template_doc("victim")).await;
    let victim_url = format!("{}/invoke/{target}/invoke", server.url);
    let victim_http = reqwest::Client::builder()
        .default_headers(
            [(
                reqwest::header::HeaderName::from_static("x-api-key"),
                victim.parse().expect("header"),
            )]
            .into_iter()
            .collect(),
        )
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    // Warm up, then the quiet baseline.
    victim_latencies(&victim_http, &victim_url, 50).await;
    let quiet = victim_latencies(&victim_http, &victim_url, n).await;

    let stop = tokio_util::sync::CancellationToken::new();
    let attacks = Arc::new(Mutex::new(std::collections::BTreeMap::<String, u64>::new()));
    let mut tasks = Vec::new();
    for (name, id) in &hostile {
        if !tools.split(',').any(|t| t == *name) {
            continue;
        }
        for _ in 0..2 {
            let (http, url, key, stop, attacks, name) = (
                http.clone(),
                format!("{}/invoke/{id}/invoke", server.url),
                attacker.clone(),
                stop.clone(),
                attacks.clone(),
                name.to_string(),
            );
            tasks.push(tokio::spawn(async move {
                while !stop.is_cancelled() {
                    let (st, body) = call(
                        http.post(&url)
                            .header("x-api-key", &key)
                            .json(&json!({"input": "x"})),
                    )
                    .await;
                    let outcome = format!(
                        "{name}: {st} {}",
                        body["error"]["code"].as_str().unwrap_or("")
                    );
                    *attacks.lock().unwrap().entry(outcome).or_default() += 1;
                }
            }));
        }
    }
    // Let the attack get going (as many runs answered as there are attacker loops), then measure.
    let deadline = Instant::now() + Duration::from_secs(30);
    let loops = tasks.len() as u64;
    while attacks.lock().unwrap().values().sum::<u64>() < loops && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rss_attack = server.rss_kib();
    let attacked = victim_latencies(&victim_http, &victim_url, n).await;
    stop.cancel();
    for t in tasks {
        let _ = t.await;
    }
    let (q50, q99) = (percentile(&quiet, 0.5), percentile(&quiet, 0.99));
    let (a50, a99) = (percentile(&attacked, 0.5), percentile(&attacked, 0.99));
    println!("hostile plugins ({tools}), {n} sequential victim invokes each:");
    println!("  quiet:        p50 {q50:?}  p99 {q99:?}");
    println!("  under attack: p50 {a50:?}  p99 {a99:?}  (VmRSS during attack {rss_attack} KiB)");
    println!(
        "  ratio:        p50 {:.2}×  p99 {:.2}×",
        a50.as_secs_f64() / q50.as_secs_f64(),
        a99.as_secs_f64() / q99.as_secs_f64()
    );
    println!("  attacker outcomes: {:?}", attacks.lock().unwrap());
    println!(
        "  p90 / max:    quiet {:?} / {:?}  under attack {:?} / {:?}",
        percentile(&quiet, 0.9),
        quiet[n - 1],
        percentile(&attacked, 0.9),
        attacked[n - 1]
    );
}
