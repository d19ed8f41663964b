//! Sandbox benchmarks: warm call (instantiate + call) of the shipped `calculator` plugin on 1 and 2 threads,
//! and cold compilation against a cache hit. Run with `cargo bench -p pipecat-sandbox`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pipecat_sandbox::{Grant, Plugin, Sandbox, SandboxConfig};

const TOOL: &str = "calculate";
const ARGS: &str = r#"{"expression":"2 * (3 + 4) ^ 2 / sqrt(16)"}"#;

/// The plugin under test: the shipped calculator.
const CALCULATOR: &[u8] = pipecat_plugins::CALCULATOR;

fn runtime(threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("runtime")
}

fn calculator(rt: &tokio::runtime::Runtime, sandbox: &Sandbox) -> Arc<Plugin> {
    rt.block_on(sandbox.load(CALCULATOR))
        .expect("calculator loads")
}

async fn call(plugin: &Plugin, grant: &Grant) {
    let outcome = plugin.call(TOOL, ARGS, grant).await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
}

/// Per-call latency percentiles, printed once (criterion reports means of batches).
fn latency_percentiles(rt: &tokio::runtime::Runtime, plugin: &Arc<Plugin>) {
    let grant = Grant::default();
    let mut samples: Vec<Duration> = rt.block_on(async {
        for _ in 0..200 {
            call(plugin, &grant).await;
        }
        let mut samples = Vec::with_capacity(5000);
        for _ in 0..5000 {
            let start = Instant::now();
            call(plugin, &grant).await;
            samples.push(start.elapsed());
        }
        samples
    });
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize];
    println!(
        "warm call latency over {} calls: p50 {:?}, p90 {:?}, p99 {:?}",
        samples.len(),
        at(0.5),
        at(0.9),
        at(0.99)
    );
}

fn warm_calls(c: &mut Criterion) {
    let sandbox = Sandbox::new(SandboxConfig::default()).expect("sandbox");
    println!("pool: {:?}", sandbox.pool_info());
    for threads in [1usize, 2] {
        let rt = runtime(threads);
        let plugin = calculator(&rt, &sandbox);
        if threads == 1 {
            latency_percentiles(&rt, &plugin);
        }
        let mut group = c.benchmark_group("warm_call");
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("{threads}_threads"), |b| {
            b.iter_custom(|iters| {
                let plugin = Arc::clone(&plugin);
                rt.block_on(async move {
                    let start = Instant::now();
                    let tasks: Vec<_> = (0..threads as u64)
                        .map(|t| {
                            let plugin = Arc::clone(&plugin);
                            let n = iters / threads as u64 + u64::from(t < iters % threads as u64);
                            tokio::spawn(async move {
                                let grant = Grant::default();
                                for _ in 0..n {
                                    call(&plugin, &grant).await;
                                }
                            })
                        })
                        .collect();
                    for task in tasks {
                        task.await.expect("task");
                    }
                    start.elapsed()
                })
            })
        });
        group.finish();
    }
}

fn compile_vs_cache(c: &mut Criterion) {
    let rt = runtime(2);
    let dir = tempfile::tempdir().expect("temp dir");
    let cached = SandboxConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        ..SandboxConfig::default()
    };
    rt.block_on(
        Sandbox::new(cached.clone())
            .expect("sandbox")
            .load(CALCULATOR),
    )
    .expect("warm cache");
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    for (name, config) in [
        ("cold_compile", SandboxConfig::default()),
        ("cache_hit", cached),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let sandbox = Sandbox::new(config.clone()).expect("sandbox");
                    let start = Instant::now();
                    let plugin = rt.block_on(sandbox.load(CALCULATOR)).expect("loads");
                    total += start.elapsed();
                    assert_eq!(plugin.cache_hit(), name == "cache_hit");
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, warm_calls, compile_vs_cache);
criterion_main!(benches);
