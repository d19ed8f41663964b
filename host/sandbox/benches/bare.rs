//! A tool call through the sandbox next to a bare wasmtime instantiate + call of the same component
//! (issue #8: "within 1.3× of a bare wasmtime instantiate + call"). Run with
//! `cargo bench -p pipecat-sandbox --bench bare`.
//!
//! The bare host is what an embedder writes from wasmtime's documentation: a default engine,
//! the component linked against WASI (nothing granted) and stub `log`/`config`/`http` imports, an
//! `InstancePre` made once, then per call a fresh `Store`, `instantiate_async` and `call-tool`. It runs once
//! with the default (on-demand) instance allocator and once with the pooling allocator, which the sandbox
//! uses. The sandbox adds what production needs: fuel, memory and time limits, output caps, the call's log,
//! grants, the epoch deadline and the inline/guest-runtime executor.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use pipecat_sandbox::{Grant, Sandbox, SandboxConfig};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "plugin",
    imports: { default: async },
    exports: { default: async },
});

use pipecat::plugin::{config, http, log, types};

const TOOL: &str = "calculate";
const ARGS: &str = r#"{"expression":"2 * (3 + 4) ^ 2 / sqrt(16)"}"#;
const CALLS: usize = 5000;

struct Bare {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Bare {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for Bare {}

impl log::Host for Bare {
    async fn write(&mut self, _level: log::Level, _message: String) {}
}

impl config::Host for Bare {
    async fn get(&mut self, _key: String) -> Option<String> {
        None
    }

    async fn get_all(&mut self) -> Vec<(String, String)> {
        Vec::new()
    }
}

impl http::Host for Bare {
    async fn send(&mut self, _request: http::Request) -> Result<http::Response, http::Error> {
        Err(http::Error::Denied("no network in the bare host".into()))
    }
}

struct BareHost {
    engine: Engine,
    pre: PluginPre<Bare>,
}

impl BareHost {
    fn new(pooling: bool) -> BareHost {
        let mut config = Config::new();
        if pooling {
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(
                PoolingAllocationConfig::default(),
            ));
        }
        let engine = Engine::new(&config).expect("engine");
        let component = Component::new(&engine, pipecat_plugins::CALCULATOR).expect("compiles");
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("wasi");
        Plugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s).expect("plugin imports");
        let pre = PluginPre::new(linker.instantiate_pre(&component).expect("pre")).expect("world");
        BareHost { engine, pre }
    }

    async fn call(&self) {
        let state = Bare {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        };
        let mut store = Store::new(&self.engine, state);
        let plugin = self
            .pre
            .instantiate_async(&mut store)
            .await
            .expect("instantiates");
        let result = plugin
            .pipecat_plugin_tools()
            .call_call_tool(&mut store, TOOL, ARGS)
            .await
            .expect("no trap");
        assert!(result.is_ok(), "{result:?}");
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

/// p50 of `CALLS` sequential calls after a warm-up.
fn p50<F: Future<Output = ()>>(
    rt: &tokio::runtime::Runtime,
    mut call: impl FnMut() -> F,
) -> Duration {
    rt.block_on(async {
        for _ in 0..200 {
            call().await;
        }
        let mut samples = Vec::with_capacity(CALLS);
        for _ in 0..CALLS {
            let start = Instant::now();
            call().await;
            samples.push(start.elapsed());
        }
        samples.sort();
        samples[CALLS / 2]
    })
}

fn host_vs_bare(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let sandbox = Sandbox::new(SandboxConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        ..SandboxConfig::default()
    })
    .expect("sandbox");
    let plugin = rt
        .block_on(sandbox.load(pipecat_plugins::CALCULATOR))
        .expect("loads");
    let grant = Grant::default();
    let host_call = || async {
        let outcome = plugin.call(TOOL, ARGS, &grant).await;
        assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    };
    let bare = BareHost::new(false);
    let pooled = BareHost::new(true);

    let host = p50(&rt, host_call);
    let on_demand = p50(&rt, || bare.call());
    let pooling = p50(&rt, || pooled.call());
    println!(
        "p50 over {CALLS} sequential calls: sandbox {host:?}, bare wasmtime (on-demand) {on_demand:?} → {:.2}×, bare wasmtime (pooling) {pooling:?} → {:.2}× (target ≤ 1.3×)",
        host.as_secs_f64() / on_demand.as_secs_f64(),
        host.as_secs_f64() / pooling.as_secs_f64(),
    );

    let mut group = c.benchmark_group("host_vs_bare");
    group.bench_function("sandbox", |b| b.iter(|| rt.block_on(host_call())));
    group.bench_function("bare_on_demand", |b| b.iter(|| rt.block_on(bare.call())));
    group.bench_function("bare_pooling", |b| b.iter(|| rt.block_on(pooled.call())));
    group.finish();
}

criterion_group!(benches, host_vs_bare);
criterion_main!(benches);
