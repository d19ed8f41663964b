//! `cargo bench -p pipecat-engine`: one LLM node with one tool round (model asks for a tool, then answers),
//! through the real OpenAI client against the zero-latency fake server. The provider is wrapped to measure
//! the time spent inside `Provider::chat`; "engine" is the run's time minus that (scheduling, templates,
//! request building, tool dispatch, records, events).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use futures::future::BoxFuture;
use pipecat_engine::{
    Engine, ProviderFn, ProviderSource, RunContext, RunLimits, ToolFailure, ToolRunner, ToolSpec,
    Workflow,
};
use pipecat_fake_llm::{FakeLlm, Reply};
use pipecat_llm::{
    ChatRequest, ChatResponse, DeltaSink, HttpPolicy, LlmError, OpenAiProvider, Provider,
};
use serde_json::{Value, json};

/// Adds the time spent in `chat` to a counter.
struct Timed {
    inner: OpenAiProvider,
    nanos: Arc<AtomicU64>,
}

impl Provider for Timed {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
        deltas: Option<&'a DeltaSink>,
    ) -> BoxFuture<'a, Result<ChatResponse, LlmError>> {
        Box::pin(async move {
            let start = Instant::now();
            let result = self.inner.chat(request, deltas).await;
            self.nanos
                .fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
            result
        })
    }
}

struct Weather;

impl ToolRunner for Weather {
    fn call<'a>(
        &'a self,
        _: &'a str,
        arguments: &'a Value,
    ) -> BoxFuture<'a, Result<String, ToolFailure>> {
        Box::pin(async move {
            Ok(json!({"location": arguments["location"], "temperature": 22}).to_string())
        })
    }

    fn spec(&self, _: &str) -> Option<ToolSpec> {
        Some(ToolSpec {
            plugin: "weather".into(),
            name: "get_weather".into(),
            description: "Current weather".into(),
            parameters: json!({"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}),
        })
    }
}

fn workflow() -> Arc<Workflow> {
    let doc = json!({
        "name": "bench",
        "nodes": [{"id": "llm_node_1", "type": "llm", "provider": "openai", "model": "gpt-4o-mini",
                   "system": "You are a helpful assistant.", "prompt": "{{ input }}", "tools": ["weather.get_weather"]}],
        "output": "llm_node_1"
    });
    match pipecat_engine::parse(&doc) {
        Ok(w) => Arc::new(w),
        Err(problems) => panic!("bench workflow invalid: {problems:?}"),
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let fake = rt.block_on(FakeLlm::start());
    let nanos = Arc::new(AtomicU64::new(0));
    let provider = Timed {
        inner: OpenAiProvider::new("openai", fake.openai_base_url(), Some("k".into())).with_policy(
            HttpPolicy {
                max_attempts: 1,
                ..HttpPolicy::default()
            },
        ),
        nanos: nanos.clone(),
    };
    let provider: Arc<dyn Provider> = Arc::new(provider);
    let providers: Arc<dyn ProviderSource> = Arc::new(ProviderFn(move |name: &str| {
        (name == "openai").then(|| provider.clone())
    }));
    let engine = Arc::new(Engine::new(providers, RunLimits::default()));
    let workflow = workflow();
    let tools: Arc<dyn ToolRunner> = Arc::new(Weather);
    let input = json!("What is the weather in Tokyo?");

    let run_once = {
        let (engine, workflow, tools, input, fake, nanos) = (
            engine.clone(),
            workflow.clone(),
            tools.clone(),
            input.clone(),
            &fake,
            nanos.clone(),
        );
        move |rt: &tokio::runtime::Runtime| -> (Duration, Duration) {
            fake.push(Reply::tool_call(
                "weather__get_weather",
                json!({"location": "Tokyo"}),
            ));
            fake.push(Reply::text("It is 22 degrees in Tokyo."));
            let before = nanos.load(Ordering::Relaxed);
            let start = Instant::now();
            let outcome = rt.block_on(engine.run(
                workflow.clone(),
                input.clone(),
                tools.clone(),
                RunContext::new(),
            ));
            let total = start.elapsed();
            assert!(outcome.error.is_none(), "{:?}", outcome.error);
            let provider = Duration::from_nanos(nanos.load(Ordering::Relaxed) - before);
            (total, provider)
        }
    };

    // Percentiles of engine time, printed for docs/benchmarks.md.
    let mut engine_us = Vec::new();
    let mut total_us = Vec::new();
    for _ in 0..200 {
        run_once(&rt);
    }
    for _ in 0..2_000 {
        let (total, provider) = run_once(&rt);
        total_us.push(total.as_secs_f64() * 1e6);
        engine_us.push(total.saturating_sub(provider).as_secs_f64() * 1e6);
    }
    let pct = |v: &mut Vec<f64>, p: f64| {
        v.sort_by(f64::total_cmp);
        v[((v.len() as f64 - 1.0) * p) as usize]
    };
    println!(
        "llm_tool_round over 2000 runs: engine p50 {:.1} us, p95 {:.1} us, p99 {:.1} us; whole run p50 {:.1} us, p99 {:.1} us",
        pct(&mut engine_us, 0.5),
        pct(&mut engine_us, 0.95),
        pct(&mut engine_us, 0.99),
        pct(&mut total_us, 0.5),
        pct(&mut total_us, 0.99)
    );

    let mut group = c.benchmark_group("llm_tool_round");
    group.bench_function("engine_excluding_provider", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| run_once(&rt))
                .map(|(t, p)| t.saturating_sub(p))
                .sum()
        })
    });
    group.bench_function("whole_run", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| run_once(&rt).0).sum())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
