//! `cargo bench -p pipecat-llm`: the client side of provider calls.
//!
//! - `sse/parse_openai_stream`: the incremental SSE parser over a 200-delta OpenAI stream fed in
//!   1,460-byte network-sized chunks (no JSON decoding).
//! - `openai/*`, `anthropic/stream`: one whole call through the real reqwest client against the
//!   zero-latency fake server on loopback (echo of a 40-word prompt): request building, HTTP,
//!   SSE parsing, JSON decoding, delta delivery. The fake's own work is included, so this is an
//!   upper bound of the per-call overhead the host adds.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pipecat_fake_llm::{FakeLlm, Reply};
use pipecat_llm::sse::SseParser;
use pipecat_llm::{AnthropicProvider, ChatRequest, Message, OpenAiProvider, Provider};
use tokio::sync::mpsc;

fn openai_stream() -> Vec<u8> {
    let mut out = String::new();
    for i in 0..200 {
        out.push_str(&format!(
            "data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"gpt-4o-mini\",\
             \"choices\":[{{\"index\":0,\"delta\":{{\"content\":\" word{i}\"}},\"finish_reason\":null}}]}}\n\n"
        ));
    }
    out.push_str("data: [DONE]\n\n");
    out.into_bytes()
}

fn sse(c: &mut Criterion) {
    let stream = openai_stream();
    let mut group = c.benchmark_group("sse");
    group.throughput(Throughput::Bytes(stream.len() as u64));
    group.bench_function("parse_openai_stream", |b| {
        b.iter(|| {
            let mut parser = SseParser::new();
            let mut events = 0;
            for chunk in stream.chunks(1460) {
                events += parser.feed(chunk).len();
            }
            events += parser.finish().len();
            assert_eq!(events, 201);
        })
    });
    group.finish();
}

fn request() -> ChatRequest {
    ChatRequest {
        model: "bench-model".into(),
        system: Some("You are a benchmark.".into()),
        messages: vec![Message::User {
            content: "lorem ipsum dolor sit amet ".repeat(8),
        }],
        ..ChatRequest::default()
    }
}

async fn call(provider: &dyn Provider, request: &ChatRequest, stream: bool) {
    if stream {
        let (tx, mut rx) = mpsc::channel(256);
        let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
        let res = provider.chat(request, Some(&tx)).await;
        drop(tx);
        let _ = drain.await;
        assert!(res.is_ok(), "{res:?}");
    } else {
        let res = provider.chat(request, None).await;
        assert!(res.is_ok(), "{res:?}");
    }
}

fn round_trips(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let fake = rt.block_on(FakeLlm::start());
    fake.set_default(Reply::Echo);
    let openai = OpenAiProvider::new("openai", fake.openai_base_url(), Some("k".into()));
    let anthropic =
        AnthropicProvider::new("anthropic", fake.anthropic_base_url(), Some("k".into()));
    let request = request();
    let mut group = c.benchmark_group("round_trip");
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("openai/whole", |b| {
        b.to_async(&rt).iter(|| call(&openai, &request, false))
    });
    group.bench_function("openai/stream", |b| {
        b.to_async(&rt).iter(|| call(&openai, &request, true))
    });
    group.bench_function("anthropic/stream", |b| {
        b.to_async(&rt).iter(|| call(&anthropic, &request, true))
    });
    group.finish();
}

criterion_group!(benches, sse, round_trips);
criterion_main!(benches);
