//! Starting and stopping: store, admin key, providers, sandbox, router, listener, graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::http::{HeaderName, Request};
use pipecat_sandbox::{Limits, Sandbox, SandboxConfig};
use pipecat_store::{CachedStore, DynStore, KeyHash, SledStore, StoreOptions};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::config::{FileConfig, LimitsConfig, ServeConfig};
use crate::error::ApiError;
use crate::examples::Demo;
use crate::runtime::Runtime;
use crate::state::AppState;
use crate::{keys, routes};

/// The router with its middleware: request ids, tracing spans, panic catching.
pub fn app(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    routes::router(&state).with_state(state).layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http().make_span_with(|req: &Request<axum::body::Body>| {
                    let id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    tracing::info_span!(
                        "request",
                        method = %req.method(),
                        path = %req.uri().path(),
                        request_id = %id,
                        account_id = tracing::field::Empty,
                        run_id = tracing::field::Empty,
                    )
                }),
            )
            .layer(PropagateRequestIdLayer::new(request_id))
            .layer(CatchPanicLayer::custom(
                |_: Box<dyn std::any::Any + Send>| {
                    axum::response::IntoResponse::into_response(ApiError::internal(
                        anyhow::anyhow!("handler panicked"),
                    ))
                },
            )),
    )
}

/// A server running in the background.
pub struct RunningServer {
    /// The bound address.
    pub addr: SocketAddr,
    /// The shared state (store, runtime, …).
    pub state: AppState,
    /// The admin key when this start generated it (first start without `PIPECAT_ADMIN_KEY`).
    pub generated_admin_key: Option<String>,
    /// What `--with-examples` seeded.
    pub demo: Option<Demo>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Starts a graceful shutdown (as SIGTERM does).
    pub fn shutdown(&self) {
        self.state.shutdown.cancel();
    }

    /// Waits until the server has stopped: connections closed, runs drained, store flushed.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("server task failed")?
    }
}

/// Reads the config file named by `config` (if any) and starts the server. See [`start_with`].
pub async fn start(config: &ServeConfig) -> anyhow::Result<RunningServer> {
    let file = match &config.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    start_with(config, file).await
}

/// Opens the store, sets up the admin key, providers and sandbox, binds `config.listen` and serves in the
/// background until [`RunningServer::shutdown`] (or the state's shutdown token) fires.
pub async fn start_with(config: &ServeConfig, file: FileConfig) -> anyhow::Result<RunningServer> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    check_writable(&config.data_dir)?;
    let dir = config.data_dir.clone();
    let options = StoreOptions {
        stall_limit: Duration::from_secs(file.limits.store_stall_secs.max(1)),
        ..StoreOptions::default()
    };
    let sled: DynStore = Arc::new(
        tokio::task::spawn_blocking(move || SledStore::open_with_options(&dir, options))
            .await
            .context("opening the store")?
            .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?,
    );
    let store: DynStore = Arc::new(CachedStore::new(sled));

    let (admin_hash, generated_admin_key) = admin_key(&store, config.admin_key.as_deref()).await?;

    let providers = pipecat_llm::Providers::from_env(&file.providers_config())
        .context("invalid [[providers]]")?;
    let limits = file.limits.clone();
    let tool_limits = tool_limits(&limits);
    let sandbox = Sandbox::new(SandboxConfig {
        cache_dir: Some(config.data_dir.join("compiled")),
        default_limits: tool_limits.clone(),
        allow_private_networks: limits.allow_private_networks,
        max_component_bytes: limits.max_plugin_bytes,
        compile_timeout: limits.compile_timeout_secs.map_or(
            SandboxConfig::default().compile_timeout,
            Duration::from_secs,
        ),
        ..SandboxConfig::default()
    })
    .context("creating the Wasm sandbox")?;
    let runtime = Arc::new(Runtime::new(
        Arc::new(sandbox),
        Arc::new(providers),
        pipecat_engine::RunLimits::default(),
        tool_limits,
    ));
    let state = AppState::new(
        store.clone(),
        runtime.clone(),
        file.plans(),
        limits,
        admin_hash,
    )
    .with_run_control(file.streaming.clone(), file.webhooks.clone())
    .with_monitoring(file.monitoring.clone(), file.retention.clone());

    let demo = if config.with_examples {
        Some(
            crate::examples::seed(&state)
                .await
                .context("seeding the examples")?,
        )
    } else {
        None
    };
    runtime.preload_published(store);
    crate::idempotency::spawn_purger(state.clone());

    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(run(listener, state.clone()));
    Ok(RunningServer {
        addr,
        state,
        generated_admin_key,
        demo,
        task,
    })
}

/// Refuses a data directory the server could not write to (read-only file system or permissions), with a
/// message naming it, before the store is opened: a server that cannot store runs must not start.
fn check_writable(dir: &std::path::Path) -> anyhow::Result<()> {
    let probe = dir.join(".pipecat-write-probe");
    let result = std::fs::write(&probe, b"probe").and_then(|()| std::fs::remove_file(&probe));
    result.with_context(|| {
        format!(
            "the data directory {} is not writable (pipecat needs a writable --data-dir)",
            dir.display()
        )
    })
}

fn tool_limits(limits: &LimitsConfig) -> Limits {
    let mut l = Limits::default();
    if let Some(fuel) = limits.tool_fuel {
        l.fuel = fuel;
    }
    if let Some(bytes) = limits.tool_memory_bytes {
        l.memory_bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
    }
    if let Some(ms) = limits.tool_timeout_ms {
        l.timeout = Duration::from_millis(ms);
    }
    if let Some(bytes) = limits.tool_output_bytes {
        l.max_output_bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
    }
    l
}

/// The admin key's hash: from `PIPECAT_ADMIN_KEY`, else the stored one, else a new key (returned to print).
async fn admin_key(
    store: &DynStore,
    given: Option<&str>,
) -> anyhow::Result<(KeyHash, Option<String>)> {
    if let Some(key) = given.map(str::trim).filter(|k| !k.is_empty()) {
        let hash = KeyHash::of(key);
        if store.admin_key_hash().await? != Some(hash) {
            store.set_admin_key_hash(hash).await?;
        }
        return Ok((hash, None));
    }
    if let Some(hash) = store.admin_key_hash().await? {
        return Ok((hash, None));
    }
    let key = keys::generate_admin();
    let hash = KeyHash::of(&key);
    store.set_admin_key_hash(hash).await?;
    Ok((hash, Some(key)))
}

/// Serves until the shutdown token fires, then drains runs within the grace period and flushes the store.
async fn run(listener: TcpListener, state: AppState) -> anyhow::Result<()> {
    let token = state.shutdown.clone();
    let grace = Duration::from_secs(state.limits.shutdown_grace_secs);
    let connections = TaskTracker::new();
    let accepting = accept_loop(
        listener,
        app(state.clone()),
        token.clone(),
        header_read_timeout(&state.limits),
        connections.clone(),
    );
    accepting.await;
    // Stopped accepting (the listener is closed); let open connections finish their requests.
    connections.close();
    if tokio::time::timeout(grace, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the grace period; closing them");
    }
    state.runs_in_flight.close();
    if tokio::time::timeout(grace, state.runs_in_flight.wait())
        .await
        .is_err()
    {
        tracing::warn!("runs still in flight after the grace period");
    }
    // WebSockets close themselves (1001) once their runs are done; wait for the close frames to go out.
    state.ws_connections.close();
    if tokio::time::timeout(grace, state.ws_connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("WebSockets still open after the grace period");
    }
    state.monitor.close().await;
    state.store.flush().await.context("flushing the store")?;
    tracing::info!("server stopped");
    Ok(())
}

/// `[limits] header_read_timeout_secs` (`0` disables it).
fn header_read_timeout(limits: &LimitsConfig) -> Option<Duration> {
    (limits.header_read_timeout_secs > 0)
        .then(|| Duration::from_secs(limits.header_read_timeout_secs))
}

/// Accepts connections until `token` fires, serving each as HTTP/1.1 (with upgrades, for WebSockets) on its
/// own task tracked by `connections`. A client must send a request's complete head within
/// `header_timeout` (also while a kept-alive connection waits for its next request), so slow-header
/// clients (slowloris) cannot hold connections open. On shutdown each connection finishes the request it
/// is serving and then closes.
async fn accept_loop(
    listener: TcpListener,
    app: Router,
    token: CancellationToken,
    header_timeout: Option<Duration>,
    connections: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = token.cancelled() => break,
        };
        let tcp = match accepted {
            Ok((tcp, _peer)) => tcp,
            Err(err) => {
                // Per-connection errors (reset before accept) are harmless; running out of file
                // descriptors is not, but retrying in a moment beats spinning or exiting.
                tracing::warn!(%err, "accepting a connection failed");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(50)) => continue,
                    () = token.cancelled() => break,
                }
            }
        };
        // Small JSON answers must not wait for Nagle's algorithm and the client's delayed ACK (≈40 ms).
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(%err, "could not set TCP_NODELAY");
        }
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let token = token.clone();
        connections.spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout);
            let conn = builder
                .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            let result = tokio::select! {
                result = conn.as_mut() => result,
                () = token.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(err) = result {
                tracing::debug!(%err, "connection ended with an error");
            }
        });
    }
    drop(listener);
}

/// `pipecat serve`: starts the server, prints its address (and a generated admin key, and the demo key with
/// `--with-examples`), and runs until SIGTERM/SIGINT: stop accepting, drain runs, flush, return `Ok`. A
/// second signal exits at once.
pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let server = start(&config).await?;
    if let Some(key) = &server.generated_admin_key {
        println!("admin key (shown once, only its hash is kept): {key}");
    }
    if let Some(demo) = &server.demo {
        println!("demo API key (shown once): {}", demo.api_key);
        for (name, id) in &demo.workflows {
            println!("example workflow {name}: {id}");
        }
        if let Some(id) = demo
            .workflows
            .get("calculator")
            .or_else(|| demo.workflows.values().next())
        {
            println!(
                "try: curl -s http://{}/invoke/{id}/invoke -H 'X-API-Key: {}' -H 'Content-Type: application/json' -d '{{\"input\": \"2 * (3 + 4) ^ 2\"}}'",
                server.addr, demo.api_key
            );
        }
    }
    println!("pipecat listening on http://{}", server.addr);
    crate::shutdown::watch_signals(server.state.shutdown.clone());
    server.wait().await
}
