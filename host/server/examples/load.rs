//! Load generator: runs/s of a template-only workflow and of a tool workflow (the calculator plugin) next
//! to `GET /healthz`, all on one in-process server.
//!
//! ```sh
//! cargo run --release --example load -p pipecat -- [seconds per phase, default 5] [concurrency, default 32]
//! ```
//! The server runs on a temporary data directory with durable run records (each run is fsynced through
//! the store's group commit before its answer), exactly as in production.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use pipecat::{FileConfig, ServeConfig};
use serde_json::{Value, json};

const ADMIN: &str = "load-admin";

struct Phase {
    name: &'static str,
    url: String,
    body: Option<Value>,
}

async fn run_phase(
    http: &reqwest::Client,
    key: &str,
    phase: &Phase,
    secs: u64,
    concurrency: usize,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let http = http.clone();
            let key = key.to_string();
            let url = phase.url.clone();
            let body = phase.body.clone();
            tokio::spawn(async move {
                let mut hist = Histogram::<u64>::new(3).expect("histogram");
                let mut errors = 0u64;
                while Instant::now() < deadline {
                    let start = Instant::now();
                    let req = match &body {
                        Some(b) => http.post(&url).header("x-api-key", &key).json(b),
                        None => http.get(&url),
                    };
                    match req.send().await {
                        Ok(resp) if resp.status().is_success() => {
                            let ok = match &body {
                                Some(_) => resp
                                    .json::<Value>()
                                    .await
                                    .is_ok_and(|v| v["status"] == "success"),
                                None => resp.bytes().await.is_ok(),
                            };
                            if !ok {
                                errors += 1;
                            }
                        }
                        _ => errors += 1,
                    }
                    let _ =
                        hist.record(u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX));
                }
                (hist, errors)
            })
        })
        .collect();
    let mut total = Histogram::<u64>::new(3).expect("histogram");
    let mut errors = 0;
    let started = Instant::now();
    for w in workers {
        if let Ok((h, e)) = w.await {
            let _ = total.add(&h);
            errors += e;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{:<28} {:>9.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms   ({} requests, {} errors, concurrency {})",
        phase.name,
        total.len() as f64 / elapsed,
        total.value_at_quantile(0.5) as f64 / 1000.0,
        total.value_at_quantile(0.99) as f64 / 1000.0,
        total.len(),
        errors,
        concurrency,
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let secs: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let concurrency: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(32);

    let dir = tempfile::tempdir()?;
    let mut config = ServeConfig::for_data_dir(dir.path());
    config.admin_key = Some(ADMIN.to_string());
    let server = pipecat::start_with(&config, FileConfig::parse("[plans.free]\n")?).await?;
    let url = server.url();
    let http = reqwest::Client::new();

    let account: Value = http
        .post(format!("{url}/v1/accounts"))
        .header("x-api-key", ADMIN)
        .json(&json!({"name": "load", "plan": "enterprise"}))
        .send()
        .await?
        .json()
        .await?;
    let account_id = account["id"].as_str().unwrap_or_default();
    let key: Value = http
        .post(format!("{url}/v1/accounts/{account_id}/keys"))
        .header("x-api-key", ADMIN)
        .json(&json!({"name": "load"}))
        .send()
        .await?
        .json()
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
    ] {
        let w: Value = http
            .post(format!("{url}/v1/workflows"))
            .header("x-api-key", &key)
            .json(&doc)
            .send()
            .await?
            .json()
            .await?;
        let id = w["id"].as_str().unwrap_or_default().to_string();
        http.post(format!("{url}/v1/workflows/{id}/publish"))
            .header("x-api-key", &key)
            .send()
            .await?
            .error_for_status()?;
        ids.push(id);
    }

    let phases = [
        Phase {
            name: "GET /healthz",
            url: format!("{url}/healthz"),
            body: None,
        },
        Phase {
            name: "invoke template-only",
            url: format!("{url}/invoke/{}/invoke", ids[0]),
            body: Some(json!({"input": "load"})),
        },
        Phase {
            name: "invoke tool (calculator)",
            url: format!("{url}/invoke/{}/invoke", ids[1]),
            body: Some(json!({"input": "2 * (3 + 4)"})),
        },
    ];
    println!("{secs} s per phase, {concurrency} concurrent clients, one in-process server");
    for phase in &phases {
        run_phase(&http, &key, phase, secs, concurrency).await;
    }
    server.shutdown();
    server.wait().await
}
