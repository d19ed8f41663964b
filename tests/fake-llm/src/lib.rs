//! A fake LLM provider server for tests and benchmarks.
//!
//! [`FakeLlm::start`] binds an HTTP server on `127.0.0.1:0` that speaks two real wire protocols:
//! OpenAI Chat Completions (`POST /v1/chat/completions`) and Anthropic Messages (`POST /v1/messages`),
//! both plain JSON and streaming (SSE). What it answers is scripted: [`FakeLlm::push`] queues
//! [`Reply`]s that are served one per request in FIFO order, shared by both protocols; when the
//! script is empty the default reply ([`FakeLlm::set_default`], [`Reply::Echo`] unless set) is served.
//! Every request body is recorded so tests can assert on what the client sent (switch that off with
//! [`FakeLlm::set_recording`] for long load runs). The `pipecat-fake-llm` binary serves the same fake
//! standalone, for benchmarks against other servers.
//!
//! ```
//! # async fn demo() {
//! use pipecat_fake_llm::{FakeLlm, Fault, Reply};
//! use serde_json::json;
//!
//! let fake = FakeLlm::start().await;
//! fake.push(Reply::Fault(Fault::RateLimited { retry_after_secs: 1 }));
//! fake.push(Reply::tool_call("get_weather", json!({"location": "Tokyo"})));
//! fake.push(Reply::text("It is sunny in Tokyo."));
//! // Point an OpenAI client at `fake.openai_base_url()` (or Anthropic at `fake.anthropic_base_url()`),
//! // then assert on what it sent:
//! let _bodies = fake.requests();
//! # }
//! ```
//!
//! Layout: `script` holds the reply/fault vocabulary and turns a reply into a protocol-neutral
//! answer; `openai` and `anthropic` render answers and faults in each wire format.

mod anthropic;
mod openai;
mod script;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use serde_json::Value;

pub use script::{Fault, Reply};

use script::Protocol;

/// One request the fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// The request path, e.g. `/v1/chat/completions`.
    pub path: String,
    /// Request headers, names lower-cased, in the order received.
    pub headers: Vec<(String, String)>,
    /// The JSON body (`Value::Null` when the body was not JSON).
    pub body: Value,
}

impl RecordedRequest {
    /// The first value of a header (name matched case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug)]
struct Shared {
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Reply>,
    requests: Mutex<Vec<RecordedRequest>>,
    recording: AtomicBool,
    served: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    fn record_and_next(&self, path: &str, headers: &HeaderMap, body: Option<&Value>) -> Reply {
        self.served.fetch_add(1, Ordering::Relaxed);
        if !self.recording.load(Ordering::Relaxed) {
            let next = lock(&self.script).pop_front();
            return next.unwrap_or_else(|| lock(&self.default).clone());
        }
        let body = body.cloned().unwrap_or(Value::Null);
        let headers = headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        // Record and pop under the requests lock so the n-th recorded request got the n-th reply.
        let mut requests = lock(&self.requests);
        requests.push(RecordedRequest {
            path: path.to_owned(),
            headers,
            body,
        });
        let next = lock(&self.script).pop_front();
        drop(requests);
        next.unwrap_or_else(|| lock(&self.default).clone())
    }
}

/// A running fake provider server. Dropping it stops accepting connections.
#[derive(Debug)]
pub struct FakeLlm {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeLlm {
    /// Starts the server on `127.0.0.1:0` (a free port) in the current tokio runtime.
    ///
    /// # Panics
    /// When no loopback port can be bound (a broken test environment).
    pub async fn start() -> FakeLlm {
        FakeLlm::start_on(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("fake LLM: bind 127.0.0.1:0")
    }

    /// Starts the server on `addr` (port 0 picks a free one) in the current tokio runtime.
    ///
    /// Besides the two provider routes it answers `GET /fake/stats` with `{"requests": N}`, the number
    /// of provider requests served since start (counted whether or not recording is on).
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<FakeLlm> {
        let shared = Arc::new(Shared {
            script: Mutex::new(VecDeque::new()),
            default: Mutex::new(Reply::Echo),
            requests: Mutex::new(Vec::new()),
            recording: AtomicBool::new(true),
            served: AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(openai_route))
            .route("/v1/messages", post(anthropic_route))
            .route("/fake/stats", get(stats_route))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        // Without TCP_NODELAY each small SSE frame waits on the client's delayed ACK (~40 ms).
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeLlm { addr, shared, task })
    }

    /// The socket address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Base URL for OpenAI clients: `http://127.0.0.1:PORT/v1`.
    pub fn openai_base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Base URL for Anthropic clients: `http://127.0.0.1:PORT` (the client appends `/v1/messages`).
    pub fn anthropic_base_url(&self) -> String {
        self.base_url()
    }

    /// Queues a reply. Replies are served one per request, in order, whichever protocol asks.
    pub fn push(&self, reply: Reply) {
        lock(&self.shared.script).push_back(reply);
    }

    /// Sets the reply served when the script is empty (initially [`Reply::Echo`]).
    pub fn set_default(&self, reply: Reply) {
        *lock(&self.shared.default) = reply;
    }

    /// Whether requests are recorded (initially `true`). Switch it off for long load runs, where
    /// recording every request would only grow memory; [`FakeLlm::requests`] then stays as it was.
    pub fn set_recording(&self, on: bool) {
        self.shared.recording.store(on, Ordering::Relaxed);
    }

    /// How many scripted replies are still queued.
    pub fn pending(&self) -> usize {
        lock(&self.shared.script).len()
    }

    /// The JSON bodies received so far, in order.
    pub fn requests(&self) -> Vec<Value> {
        lock(&self.shared.requests)
            .iter()
            .map(|r| r.body.clone())
            .collect()
    }

    /// The requests received so far (path, headers, body), in order.
    pub fn recorded(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// How many requests were recorded so far (see [`FakeLlm::set_recording`]).
    pub fn request_count(&self) -> usize {
        lock(&self.shared.requests).len()
    }

    /// How many provider requests were served since start, recorded or not.
    pub fn served_count(&self) -> u64 {
        self.shared.served.load(Ordering::Relaxed)
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn openai_route(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    route(
        Protocol::OpenAi,
        "/v1/chat/completions",
        shared,
        headers,
        body,
    )
    .await
}

async fn stats_route(State(shared): State<Arc<Shared>>) -> axum::Json<Value> {
    axum::Json(serde_json::json!({"requests": shared.served.load(Ordering::Relaxed)}))
}

async fn anthropic_route(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    route(Protocol::Anthropic, "/v1/messages", shared, headers, body).await
}

async fn route(
    protocol: Protocol,
    path: &str,
    shared: Arc<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed: Result<Value, _> = serde_json::from_slice(&body);
    let reply = shared.record_and_next(path, &headers, parsed.as_ref().ok());
    match parsed {
        Ok(request) => script::serve(protocol, &request, reply).await,
        Err(e) => {
            let message = format!("request body is not JSON: {e}");
            (
                StatusCode::BAD_REQUEST,
                protocol.error_body("invalid_request_error", &message),
            )
                .into_response()
        }
    }
}
