//! Capacity measurements of issue #8 that need a big store, on a temporary data directory:
//!
//! ```sh
//! # Start-up with 100 plugins and 1,000 published workflows: the first start compiles each plugin once;
//! # a restart must come up from the compiled-code cache.
//! cargo run --release -p pipecat --example capacity -- startup
//! # Resident memory and store size after recording N runs (default 1,000,000; template runs, 32 clients).
//! cargo run --release -p pipecat --example capacity -- runs 1000000
//! ```
//!
//! `CAPACITY_TRIM=1` calls glibc's `malloc_trim(0)` before each reading of `runs` (memory freed but kept
//! by the allocator is then not counted). `CAPACITY_EXIT=1` exits right after the last reading of `runs`,
//! without shutting down (under `heaptrack`, the leak list is then what was live).

#[path = "common/mod.rs"]
mod common;

use std::path::Path;

use common::{anon_mib, dir_bytes, rss_mib};
use std::time::Instant;

use pipecat::{FileConfig, RunningServer, ServeConfig};
use serde_json::{Value, json};

const ADMIN: &str = "capacity-admin";

async fn start(dir: &Path) -> anyhow::Result<RunningServer> {
    let mut config = ServeConfig::for_data_dir(dir);
    config.admin_key = Some(ADMIN.to_string());
    pipecat::start_with(&config, FileConfig::parse("")?).await
}

async fn send(req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
    let resp = req.send().await?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(status.is_success(), "{status}: {body}");
    Ok(body)
}

/// An unlimited account and its key.
async fn account(http: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    let account = send(
        http.post(format!("{url}/v1/accounts"))
            .header("x-api-key", ADMIN)
            .json(&json!({"name": "capacity", "plan": "enterprise"})),
    )
    .await?;
    let id = account["id"].as_str().unwrap_or_default();
    let key = send(
        http.post(format!("{url}/v1/accounts/{id}/keys"))
            .header("x-api-key", ADMIN)
            .json(&json!({"name": "capacity"})),
    )
    .await?;
    Ok(key["key"].as_str().unwrap_or_default().to_string())
}

async fn publish(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    doc: Value,
) -> anyhow::Result<String> {
    let w = send(
        http.post(format!("{url}/v1/workflows"))
            .header("x-api-key", key)
            .json(&doc),
    )
    .await?;
    let id = w["id"].as_str().unwrap_or_default().to_string();
    send(
        http.post(format!("{url}/v1/workflows/{id}/publish"))
            .header("x-api-key", key),
    )
    .await?;
    Ok(id)
}

/// The calculator component with a custom section naming it `n`: a distinct plugin (its own hash, its
/// own compiled code) that behaves the same.
fn distinct_calculator(n: usize) -> anyhow::Result<Vec<u8>> {
    let mut bytes = pipecat_plugins::SHIPPED
        .iter()
        .find(|(name, _)| *name == "calculator")
        .map(|(_, b)| b.to_vec())
        .ok_or_else(|| anyhow::anyhow!("no calculator plugin"))?;
    let name = b"pipecat-capacity";
    let payload = n.to_string();
    let content_len = 1 + name.len() + payload.len();
    bytes.push(0); // custom section id
    anyhow::ensure!(content_len < 128, "single-byte LEB128 lengths only");
    bytes.push(u8::try_from(content_len)?);
    bytes.push(u8::try_from(name.len())?);
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(payload.as_bytes());
    Ok(bytes)
}

async fn startup() -> anyhow::Result<()> {
    const PLUGINS: usize = 100;
    const WORKFLOWS: usize = 1000;
    let dir = tempfile::tempdir()?;
    let http = reqwest::Client::new();
    let server = start(dir.path()).await?;
    let url = server.url();
    let key = account(&http, &url).await?;
    let filling = Instant::now();
    for i in 0..PLUGINS {
        send(
            http.post(format!("{url}/v1/plugins?name=calc{i}"))
                .header("x-api-key", &key)
                .header("content-type", "application/wasm")
                .body(distinct_calculator(i)?),
        )
        .await?;
    }
    let uploaded = filling.elapsed();
    let mut ids = Vec::new();
    for i in 0..WORKFLOWS {
        let id = publish(
            &http,
            &url,
            &key,
            json!({"name": format!("w{i}"), "nodes": [
                {"id": "calc", "type": "tool", "tool": format!("calc{}.calculate", i % PLUGINS),
                 "arguments": {"expression": "{{ input }}"}}],
                "edges": [], "output": "calc"}),
        )
        .await?;
        ids.push(id);
    }
    println!(
        "filled: {PLUGINS} distinct plugins uploaded (each compiled once) in {:.1} s, {WORKFLOWS} workflows published in {:.1} s",
        uploaded.as_secs_f64(),
        (filling.elapsed() - uploaded).as_secs_f64()
    );
    server.shutdown();
    server.wait().await?;

    let started = Instant::now();
    let server = start(dir.path()).await?;
    let listening = started.elapsed();
    let url = server.url();
    // One run of every plugin, the last one uploaded first: the time until all of them have answered.
    let mut first_run = None;
    for id in ids[..PLUGINS].iter().rev() {
        let answer = send(
            http.post(format!("{url}/invoke/{id}/invoke"))
                .header("x-api-key", &key)
                .json(&json!({"input": "6 * 7"})),
        )
        .await?;
        anyhow::ensure!(answer["status"] == "success", "a run failed: {answer}");
        first_run.get_or_insert_with(|| started.elapsed());
    }
    let all_answered = started.elapsed();
    println!(
        "restart with {PLUGINS} plugins and {WORKFLOWS} published workflows: listening after {:.0} ms, first tool run answered after {:.0} ms, one run of each of the {PLUGINS} plugins answered after {:.0} ms (target ≤ 1 s); resident {:.0} MiB",
        listening.as_secs_f64() * 1000.0,
        first_run.unwrap_or_default().as_secs_f64() * 1000.0,
        all_answered.as_secs_f64() * 1000.0,
        rss_mib()
    );
    server.shutdown();
    server.wait().await
}

async fn runs(n: u64) -> anyhow::Result<()> {
    const CLIENTS: u64 = 32;
    let dir = tempfile::tempdir()?;
    let http = reqwest::Client::new();
    let server = start(dir.path()).await?;
    let url = server.url();
    let key = account(&http, &url).await?;
    let id = publish(
        &http,
        &url,
        &key,
        json!({"name": "small", "nodes": [{"id": "r", "type": "template", "template": "Hello, {{ input }}!"}],
               "edges": [], "output": "r"}),
    )
    .await?;
    let empty = dir_bytes(dir.path());
    let started = Instant::now();
    let mut done = 0;
    while done < n {
        let batch = (n - done).min(100_000);
        let workers: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (http, key) = (http.clone(), key.clone());
                let url = format!("{url}/invoke/{id}/invoke");
                let share = batch / CLIENTS + u64::from(c < batch % CLIENTS);
                tokio::spawn(async move {
                    for _ in 0..share {
                        let ok = http
                            .post(&url)
                            .header("x-api-key", &key)
                            .json(&json!({"input": "world"}))
                            .send()
                            .await
                            .is_ok_and(|r| r.status().is_success());
                        anyhow::ensure!(ok, "an invocation failed");
                    }
                    Ok(())
                })
            })
            .collect();
        for w in workers {
            w.await??;
        }
        done += batch;
        common::trim_if("CAPACITY_TRIM");
        println!(
            "{done} runs in {:.0} s: resident {:.0} MiB ({:.0} MiB anonymous), store {:.1} MiB",
            started.elapsed().as_secs_f64(),
            rss_mib(),
            anon_mib(),
            dir_bytes(dir.path()) as f64 / 1048576.0
        );
    }
    let grown = dir_bytes(dir.path()).saturating_sub(empty);
    println!(
        "after {n} recorded runs: resident {:.0} MiB (target ≤ 150), store growth {:.0} bytes per run (target ≤ 2,048)",
        rss_mib(),
        grown as f64 / n as f64
    );
    if std::env::var_os("CAPACITY_EXIT").is_some() {
        // Leaves everything allocated, so a heap profiler's "leaked" list is what was live here (the
        // files go: the running server keeps only its handles).
        let _ = std::fs::remove_dir_all(dir.path());
        std::process::exit(0);
    }
    server.shutdown();
    server.wait().await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("startup") => startup().await,
        Some("runs") => {
            runs(
                args.get(2)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(1_000_000),
            )
            .await
        }
        _ => anyhow::bail!("usage: capacity startup | capacity runs [N]"),
    }
}
