//! Shared helpers: an in-process server on `127.0.0.1:0` over a temporary data directory, and a client.
#![allow(dead_code)]

pub mod watchdog;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pipecat::{FileConfig, RunningServer, ServeConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio_util::sync::CancellationToken;

/// The admin key of test servers.
pub const ADMIN: &str = "test-admin-key";

/// A running in-process server and a client for it. Dropping it stops the server (see [`StopOnDrop`]).
pub struct TestServer {
    pub server: RunningServer,
    pub http: reqwest::Client,
    pub url: String,
    pub dir: Arc<tempfile::TempDir>,
    /// Last, so dropped after `server` (and its handle on the store).
    stop: StopOnDrop,
}

/// One answer: status, headers and JSON body (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    /// The `error.code` of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl TestServer {
    /// A server with this TOML configuration.
    pub async fn start(toml: &str) -> TestServer {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        Self::start_in(dir, toml).await
    }

    /// A server over an existing data directory.
    pub async fn start_in(dir: Arc<tempfile::TempDir>, toml: &str) -> TestServer {
        let mut config = ServeConfig::for_data_dir(dir.path());
        config.admin_key = Some(ADMIN.to_string());
        let file = FileConfig::parse(toml).expect("test config");
        let server = pipecat::start_with(&config, file)
            .await
            .expect("server starts");
        let url = server.url();
        let stop = StopOnDrop {
            shutdown: server.state.shutdown.clone(),
            dir: Some(dir.clone()),
        };
        TestServer {
            server,
            http: reqwest::Client::new(),
            url,
            dir,
            stop,
        }
    }

    /// Sends a request and reads the answer.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body read");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
        }
    }

    /// GET with a key.
    pub async fn get(&self, path: &str, key: &str) -> Answer {
        self.send(
            self.http
                .get(format!("{}{path}", self.url))
                .header("x-api-key", key),
        )
        .await
    }

    /// POST JSON with a key.
    pub async fn post(&self, path: &str, key: &str, body: &Value) -> Answer {
        self.send(
            self.http
                .post(format!("{}{path}", self.url))
                .header("x-api-key", key)
                .json(body),
        )
        .await
    }

    /// PUT JSON with a key.
    pub async fn put(&self, path: &str, key: &str, body: &Value) -> Answer {
        self.send(
            self.http
                .put(format!("{}{path}", self.url))
                .header("x-api-key", key)
                .json(body),
        )
        .await
    }

    /// DELETE with a key.
    pub async fn delete(&self, path: &str, key: &str) -> Answer {
        self.send(
            self.http
                .delete(format!("{}{path}", self.url))
                .header("x-api-key", key),
        )
        .await
    }

    /// Creates an account (optionally with a limit override) and a key; returns `(account_id, key)`.
    pub async fn account(&self, monthly_run_limit: Option<u64>) -> (String, String) {
        let mut body = json!({"name": "acme", "plan": "free"});
        if let Some(limit) = monthly_run_limit {
            body["monthly_run_limit"] = json!(limit);
        }
        let a = self.post("/v1/accounts", ADMIN, &body).await;
        assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
        let id = a.body["id"].as_str().expect("account id").to_string();
        let k = self
            .post(
                &format!("/v1/accounts/{id}/keys"),
                ADMIN,
                &json!({"name": "test"}),
            )
            .await;
        assert_eq!(k.status, StatusCode::CREATED, "{:?}", k.body);
        (id, k.body["key"].as_str().expect("key").to_string())
    }

    /// Uploads a shipped plugin under its name.
    pub async fn upload_shipped(&self, key: &str, name: &str) -> Answer {
        let bytes = shipped(name);
        self.upload(key, name, bytes.to_vec()).await
    }

    /// Uploads bytes as a plugin.
    pub async fn upload(&self, key: &str, name: &str, bytes: Vec<u8>) -> Answer {
        self.send(
            self.http
                .post(format!("{}/v1/plugins?name={name}", self.url))
                .header("x-api-key", key)
                .header("content-type", "application/wasm")
                .body(bytes),
        )
        .await
    }

    /// Creates and publishes a workflow; returns its id.
    pub async fn publish(&self, key: &str, doc: &Value) -> String {
        let w = self.post("/v1/workflows", key, doc).await;
        assert_eq!(w.status, StatusCode::CREATED, "{:?}", w.body);
        let id = w.body["id"].as_str().expect("workflow id").to_string();
        let p = self
            .post(&format!("/v1/workflows/{id}/publish"), key, &json!({}))
            .await;
        assert_eq!(p.status, StatusCode::OK, "{:?}", p.body);
        id
    }

    /// Invokes a workflow.
    pub async fn invoke(&self, key: &str, id: &str, input: Value) -> Answer {
        self.post(
            &format!("/invoke/{id}/invoke"),
            key,
            &json!({ "input": input }),
        )
        .await
    }
}

/// The lock file a store holds (`flock`) for as long as it is open (`pipecat_store`'s `LOCK_FILE`).
const STORE_LOCK: &str = "pipecat-store.lock";

/// How long dropping a [`TestServer`] waits for its graceful shutdown before leaving the directory to
/// [`remove_when_closed`].
const STOP_WAIT: Duration = Duration::from_secs(10);

/// Stops the server when its [`TestServer`] is dropped, and keeps the data directory until the store is
/// closed.
///
/// The server's tasks run on the test's runtime and outlive the `TestServer`: a multi-thread runtime runs
/// them until `#[tokio::test]` drops it, after the test body. Deleting the directory under them made the
/// faults tests hang: a run recorded after the deletion is a value over sled's blob threshold (~128 KiB),
/// which sled writes to a file of its own; creating it fails, sled 0.34 leaks the log reservation it had
/// taken, and the store's last flush (when the runtime dropped the server) waited forever for it, holding
/// sled's process-wide concurrency lock, which then also blocked the next in-process server of the test
/// binary on its first transaction.
struct StopOnDrop {
    shutdown: CancellationToken,
    dir: Option<Arc<tempfile::TempDir>>,
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.shutdown.cancel();
        let Some(dir) = self.dir.take() else { return };
        let lock = dir.path().join(STORE_LOCK);
        let closed = match Handle::try_current().map(|h| h.runtime_flavor()) {
            // Other threads run the shutdown (stop accepting, drain runs, flush, close the store) meanwhile.
            Ok(RuntimeFlavor::MultiThread) => {
                tokio::task::block_in_place(|| wait_closed(&lock, STOP_WAIT))
            }
            // A current-thread runtime runs the server only while the test awaits something.
            Ok(_) => store_closed(&lock),
            Err(_) => wait_closed(&lock, STOP_WAIT),
        };
        if !closed {
            remove_when_closed(dir, lock);
        }
    }
}

/// True once no store holds the lock file (or there is none).
fn store_closed(lock: &Path) -> bool {
    std::fs::File::open(lock).map_or(true, |f| f.try_lock().is_ok())
}

fn wait_closed(lock: &Path, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while !store_closed(lock) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// Drops this handle on the directory (deleting it if it was the last) from a thread, once the store has
/// released its lock: when the runtime drops the server's tasks at the end of the test. (Should no thread
/// start, the handle is dropped at once, as it always was before.)
fn remove_when_closed(dir: Arc<tempfile::TempDir>, lock: PathBuf) {
    let _ = std::thread::Builder::new()
        .name("test-dir-cleanup".into())
        .spawn(move || {
            if let Ok(file) = std::fs::File::open(&lock) {
                let _ = file.lock();
            }
            drop(dir);
        });
}

/// The bytes of a shipped plugin.
pub fn shipped(name: &str) -> &'static [u8] {
    pipecat_plugins::SHIPPED
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, b)| *b)
        .expect("shipped plugin")
}

/// A template-only workflow (no plugin, no LLM).
pub fn template_workflow() -> Value {
    json!({
        "name": "greet",
        "nodes": [{"id": "reply", "type": "template", "template": "Hello, {{ input }}!"}],
        "edges": [],
        "output": "reply"
    })
}

/// A workflow calling the calculator plugin.
pub fn calculator_workflow() -> Value {
    json!({
        "name": "calculator",
        "nodes": [
            {"id": "calc", "type": "tool", "tool": "calculator.calculate", "arguments": {"expression": "{{ input }}"}},
            {"id": "reply", "type": "template", "template": "{{ input }} = {{ nodes.calc.output }}"}
        ],
        "edges": [{"from": "calc", "to": "reply"}],
        "output": "reply"
    })
}

/// The next JSON message of a WebSocket within `within` (control frames skipped); `Err(close code)` when
/// the server closes (1005 for a close frame without a code, 1006 without a close frame).
pub async fn ws_next<S>(
    socket: &mut tokio_tungstenite::WebSocketStream<S>,
    within: std::time::Duration,
) -> Result<Value, u16>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures::StreamExt as _;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let message = tokio::time::timeout(within, socket.next())
            .await
            .unwrap_or_else(|_| panic!("a WebSocket message within {within:?}"));
        match message {
            Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(&t).expect("JSON")),
            Some(Ok(Message::Close(frame))) => {
                return Err(frame.map_or(1005, |f| u16::from(f.code)));
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Err(1006),
        }
    }
}
