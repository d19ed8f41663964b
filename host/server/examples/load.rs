//! Load harness (issue #8): one in-process server on a temporary data directory, keep-alive clients in the
//! same process, a zero-latency fake LLM provider (`pipecat-fake-llm`, loopback HTTP) for the LLM phase.
//! Prints one table: throughput, latency and CPU per request of each phase, and its ratio to the server's
//! own floor (`GET /healthz` at the same concurrency); then the latency a run adds over the floor at
//! concurrency 1, the orchestration overhead of an LLM + tool run (its latency minus the time the server
//! waited on the provider, from the run records' `provider_ms`), the store's growth per run and the
//! process's resident memory.
//!
//! ```sh
//! cargo run --release -p pipecat --example load -- [seconds per phase, default 5] [concurrency, default 32]
//! ```
//! `LOAD_PHASES=template,tool` runs only the phases whose name contains one of the words (for profiling);
//! a word starting with `=` names one phase exactly (`LOAD_PHASES='=tool run'`).
//! Every invocation is authenticated, counted against the monthly limit and its run record made durable
//! (fsynced through the store's group commit) before the answer, exactly as in production.

#[path = "common/mod.rs"]
mod common;

use common::{dir_bytes, rss_mib};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use pipecat::{FileConfig, ServeConfig};
use pipecat_fake_llm::{FakeLlm, Reply};
use serde_json::{Value, json};

const ADMIN: &str = "load-admin";

/// One request shape to hammer.
#[derive(Clone)]
struct Phase {
    name: &'static str,
    url: String,
    body: Option<Value>,
    concurrency: usize,
}

/// What one phase measured.
struct Measured {
    requests: u64,
    errors: u64,
    per_sec: f64,
    hist: Histogram<u64>,
    cpu_us_per_request: f64,
    /// `(latency µs, run id)` of every successful invocation (kept for the overhead phase).
    runs: Vec<(u64, String)>,
}

impl Measured {
    fn p(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64
    }
}

/// User + system CPU time of this process (server and clients alike), from `/proc/self/stat`.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at the state field (3).
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime is field 14, stime 15 (1-based); `fields[0]` is field 3. Linux reports them in 1/100 s.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

async fn run_phase(http: &reqwest::Client, key: &str, phase: &Phase, secs: u64) -> Measured {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let cpu_before = cpu_time();
    let started = Instant::now();
    let workers: Vec<_> = (0..phase.concurrency)
        .map(|_| {
            let http = http.clone();
            let key = key.to_string();
            let phase = phase.clone();
            tokio::spawn(async move {
                let mut hist = Histogram::<u64>::new(3).expect("histogram");
                let mut errors = 0u64;
                let mut runs = Vec::new();
                while Instant::now() < deadline {
                    let start = Instant::now();
                    let req = match &phase.body {
                        Some(b) => http.post(&phase.url).header("x-api-key", &key).json(b),
                        None => http.get(&phase.url),
                    };
                    let run_id = match req.send().await {
                        Ok(resp) if resp.status().is_success() => match &phase.body {
                            Some(_) => match resp.json::<Value>().await {
                                Ok(v) if v["status"] == "success" => {
                                    Some(v["run_id"].as_str().unwrap_or_default().to_string())
                                }
                                _ => None,
                            },
                            None => resp.bytes().await.ok().map(|_| String::new()),
                        },
                        _ => None,
                    };
                    let micros = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
                    match run_id {
                        Some(id) => {
                            let _ = hist.record(micros);
                            if phase.concurrency == 1 && !id.is_empty() {
                                runs.push((micros, id));
                            }
                        }
                        None => errors += 1,
                    }
                }
                (hist, errors, runs)
            })
        })
        .collect();
    let mut hist = Histogram::<u64>::new(3).expect("histogram");
    let mut errors = 0;
    let mut runs = Vec::new();
    for w in workers {
        if let Ok((h, e, r)) = w.await {
            let _ = hist.add(&h);
            errors += e;
            runs.extend(r);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_time().saturating_sub(cpu_before);
    let requests = hist.len();
    Measured {
        requests,
        errors,
        per_sec: requests as f64 / elapsed,
        cpu_us_per_request: cpu.as_secs_f64() * 1e6 / requests.max(1) as f64,
        hist,
        runs,
    }
}

/// Latency minus provider time of each recorded run, in µs.
async fn orchestration_overhead(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    runs: &[(u64, String)],
) -> anyhow::Result<Histogram<u64>> {
    let mut hist = Histogram::<u64>::new(3)?;
    for (latency_us, run_id) in runs {
        let run: Value = http
            .get(format!("{url}/v1/runs/{run_id}"))
            .header("x-api-key", key)
            .send()
            .await?
            .json()
            .await?;
        let provider_ms: f64 = run["nodes"]
            .as_array()
            .map(|nodes| nodes.iter().filter_map(|n| n["provider_ms"].as_f64()).sum())
            .unwrap_or(0.0);
        let overhead = (*latency_us as f64 - provider_ms * 1000.0).max(0.0);
        let _ = hist.record(overhead as u64);
    }
    Ok(hist)
}

struct Fixture {
    key: String,
    template: String,
    tool: String,
    llm: String,
}

async fn post(
    http: &reqwest::Client,
    url: String,
    key: &str,
    body: Value,
) -> anyhow::Result<Value> {
    Ok(http
        .post(url)
        .header("x-api-key", key)
        .json(&body)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

/// An account with an unlimited plan, its key, the calculator plugin and three published workflows.
async fn fixture(http: &reqwest::Client, url: &str) -> anyhow::Result<Fixture> {
    let account = post(
        http,
        format!("{url}/v1/accounts"),
        ADMIN,
        json!({"name": "load", "plan": "enterprise"}),
    )
    .await?;
    let account_id = account["id"].as_str().unwrap_or_default();
    let key = post(
        http,
        format!("{url}/v1/accounts/{account_id}/keys"),
        ADMIN,
        json!({"name": "load"}),
    )
    .await?;
    let key = key["key"].as_str().unwrap_or_default().to_string();
    let calculator = pipecat_plugins::SHIPPED
        .iter()
        .find(|(n, _)| *n == "calculator")
        .map(|(_, b)| b.to_vec())
        .ok_or_else(|| anyhow::anyhow!("no calculator plugin"))?;
    http.post(format!("{url}/v1/plugins?name=calculator"))
        .header("x-api-key", &key)
        .header("content-type", "application/wasm")
        .body(calculator)
        .send()
        .await?
        .error_for_status()?;

    let mut ids = Vec::new();
    for doc in [
        json!({"name": "template", "nodes": [{"id": "r", "type": "template", "template": "Hello, {{ input }}!"}],
               "edges": [], "output": "r"}),
        json!({"name": "tool", "nodes": [
                 {"id": "calc", "type": "tool", "tool": "calculator.calculate", "arguments": {"expression": "{{ input }}"}}],
               "edges": [], "output": "calc"}),
        json!({"name": "llm-tool", "nodes": [
                 {"id": "ask", "type": "llm", "provider": "openai", "model": "fake", "prompt": "{{ input }}",
                  "tools": ["calculator.calculate"], "stream": false}],
               "edges": [], "output": "ask"}),
    ] {
        let w = post(http, format!("{url}/v1/workflows"), &key, doc).await?;
        let id = w["id"].as_str().unwrap_or_default().to_string();
        http.post(format!("{url}/v1/workflows/{id}/publish"))
            .header("x-api-key", &key)
            .send()
            .await?
            .error_for_status()?;
        ids.push(id);
    }
    let [template, tool, llm] =
        <[String; 3]>::try_from(ids).map_err(|_| anyhow::anyhow!("expected three workflows"))?;
    Ok(Fixture {
        key,
        template,
        tool,
        llm,
    })
}

fn ms(us: f64) -> String {
    format!("{:.3} ms", us / 1000.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let secs: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let concurrency: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(32);
    let only = std::env::var("LOAD_PHASES").unwrap_or_default();

    let fake = FakeLlm::start().await;
    fake.set_recording(false);
    fake.set_default(Reply::tool_round(
        json!({"expression": "2 * (3 + 4)"}),
        "The answer is 14.",
    ));

    let dir = tempfile::tempdir()?;
    let mut config = ServeConfig::for_data_dir(dir.path());
    config.admin_key = Some(ADMIN.to_string());
    let file = FileConfig::parse(&format!(
        "[[providers]]\nname = \"openai\"\nkind = \"openai\"\nbase_url = \"{}\"\n",
        fake.openai_base_url()
    ))?;
    let server = pipecat::start_with(&config, file).await?;
    let url = server.url();
    let http = reqwest::Client::new();
    let f = fixture(&http, &url).await?;

    let invoke = |id: &str| format!("{url}/invoke/{id}/invoke");
    let phase = |name, url: String, body: Option<Value>, concurrency| Phase {
        name,
        url,
        body,
        concurrency,
    };
    let phases = [
        phase("GET /healthz", format!("{url}/healthz"), None, concurrency),
        phase(
            "template run",
            invoke(&f.template),
            Some(json!({"input": "load"})),
            concurrency,
        ),
        phase(
            "tool run",
            invoke(&f.tool),
            Some(json!({"input": "2 * (3 + 4)"})),
            concurrency,
        ),
        phase(
            "llm + tool run",
            invoke(&f.llm),
            Some(json!({"input": "What is 2 * (3 + 4)?"})),
            concurrency,
        ),
        phase("GET /healthz c1", format!("{url}/healthz"), None, 1),
        phase(
            "tool run c1",
            invoke(&f.tool),
            Some(json!({"input": "2 * (3 + 4)"})),
            1,
        ),
        phase(
            "llm + tool run c1",
            invoke(&f.llm),
            Some(json!({"input": "What is 2 * (3 + 4)?"})),
            1,
        ),
    ];

    println!(
        "{secs} s per phase, one in-process server, clients in the same process, {} cores",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!(
        "| phase | concurrency | throughput | vs floor | p50 | p99 | CPU per request | errors |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let store_before = dir_bytes(dir.path());
    let mut results: Vec<(&Phase, Measured)> = Vec::new();
    for phase in phases.iter().filter(|p| {
        only.is_empty()
            || only.split(',').any(|o| match o.strip_prefix('=') {
                Some(exact) => p.name == exact,
                None => p.name.contains(o),
            })
    }) {
        let m = run_phase(&http, &f.key, phase, secs).await;
        let floor = results
            .iter()
            .find(|(p, _)| p.url.ends_with("/healthz") && p.concurrency == phase.concurrency)
            .map(|(_, m)| m.per_sec);
        println!(
            "| {} | {} | {:.0} /s | {} | {} | {} | {:.0} µs | {} |",
            phase.name,
            phase.concurrency,
            m.per_sec,
            floor.map_or("—".into(), |f| format!("{:.1} %", 100.0 * m.per_sec / f)),
            ms(m.p(0.5)),
            ms(m.p(0.99)),
            m.cpu_us_per_request,
            m.errors,
        );
        results.push((phase, m));
    }
    let runs: u64 = results
        .iter()
        .filter(|(p, _)| p.body.is_some())
        .map(|(_, m)| m.requests)
        .sum();
    server_flush(&http, &url).await;
    let growth = dir_bytes(dir.path()).saturating_sub(store_before);

    println!();
    let by = |name: &str| results.iter().find(|(p, _)| p.name == name).map(|(_, m)| m);
    if let (Some(floor), Some(tool)) = (by("GET /healthz c1"), by("tool run c1")) {
        println!(
            "tool run adds over the floor at concurrency 1: p50 {:.0} µs (tool run p50 {} − /healthz p50 {})",
            tool.p(0.5) - floor.p(0.5),
            ms(tool.p(0.5)),
            ms(floor.p(0.5)),
        );
    }
    if let Some(llm) = by("llm + tool run c1") {
        let overhead = orchestration_overhead(&http, &url, &f.key, &llm.runs).await?;
        println!(
            "llm + tool run, orchestration overhead (latency − provider_ms) over {} runs: p50 {:.0} µs, p99 {:.0} µs",
            overhead.len(),
            overhead.value_at_quantile(0.5),
            overhead.value_at_quantile(0.99),
        );
    }
    if runs > 0 {
        println!(
            "store growth: {:.0} bytes per run ({runs} runs, {:.1} MiB)",
            growth as f64 / runs as f64,
            growth as f64 / 1048576.0
        );
    }
    println!("resident memory at the end: {:.0} MiB", rss_mib());
    server.shutdown();
    server.wait().await
}

/// Lets the server's store settle (its background flush) before the directory is measured.
async fn server_flush(http: &reqwest::Client, url: &str) {
    let _ = http.get(format!("{url}/readyz")).send().await;
}
