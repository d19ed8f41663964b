//! Request-level hardening: every form of bad key, tenant isolation, and hostile input.
//!
//! Most cases are data, in `tests/hardening/*.json` (each file documents its format). Every answer the
//! suite gets goes through [`Suite::call`], which holds it to the rules of every answer: never a `5xx`, and
//! every `4xx` carries a stable snake-case `error.code` and a non-empty `error.message`. At the end of each
//! test [`Suite::audit`] scans every body for a stored key hash and (for the tenancy test) B's answers for
//! any of A's ids, and [`Suite::still_serves`] checks that the server still answers `/healthz` and a
//! normal invocation.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use common::{ADMIN, TestServer};
use std::panic::AssertUnwindSafe;

use futures::{FutureExt as _, SinkExt, StreamExt};
use pipecat_fake_llm::{FakeLlm, Reply};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use uuid::Uuid;

#[test]
fn every_test_arms_the_watchdog() {
    common::watchdog::assert_every_test_arms("hardening.rs", include_str!("hardening.rs"));
}

/// Generous bound for any single request: the boxes are shared, this only guards against a hang.
const PATIENCE: Duration = Duration::from_secs(60);

fn load(name: &str) -> Value {
    let path = format!("{}/tests/hardening/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn cases<T: serde::de::DeserializeOwned>(file: &str, member: &str) -> Vec<T> {
    serde_json::from_value(load(file)[member].clone())
        .unwrap_or_else(|e| panic!("{file} `{member}`: {e}"))
}

// ----- requests as data -----

/// A request body.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Body {
    /// A JSON value (sent as `application/json` unless the case names a content type).
    Json(Value),
    /// Text as is.
    Raw(String),
    /// Bytes in hex.
    Hex(String),
    /// `prefix + unit × count + close × count + suffix`.
    Repeat {
        prefix: String,
        unit: String,
        count: usize,
        #[serde(default)]
        close: String,
        suffix: String,
    },
}

impl Body {
    fn bytes(&self, vars: &Vars) -> Vec<u8> {
        match self {
            Body::Json(v) => serde_json::to_vec(&vars.value(v)).expect("JSON"),
            Body::Raw(text) => vars.text(text).into_bytes(),
            Body::Hex(hex) => hex::decode(hex).expect("hex body"),
            Body::Repeat {
                prefix,
                unit,
                count,
                close,
                suffix,
            } => {
                let mut s =
                    String::with_capacity(prefix.len() + (unit.len() + close.len()) * count);
                s.push_str(prefix);
                for _ in 0..*count {
                    s.push_str(unit);
                }
                for _ in 0..*count {
                    s.push_str(close);
                }
                s.push_str(suffix);
                s.into_bytes()
            }
        }
    }
}

/// One request: method, path (with `{var}`s), headers (repeatable, in order) and body.
#[derive(Debug, Clone, Deserialize)]
struct Spec {
    method: String,
    path: String,
    #[serde(default)]
    headers: Vec<(String, String)>,
    #[serde(default)]
    body: Option<Body>,
}

/// `{name}` → value substitutions.
#[derive(Debug, Clone, Default)]
struct Vars(BTreeMap<String, String>);

impl Vars {
    fn set(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        self.0.insert(name.to_string(), value.into());
        self
    }

    fn get(&self, name: &str) -> &str {
        self.0
            .get(name)
            .unwrap_or_else(|| panic!("no variable {name}"))
    }

    fn text(&self, s: &str) -> String {
        let mut out = s.to_string();
        for (k, v) in &self.0 {
            out = out.replace(&format!("{{{k}}}"), v);
        }
        out
    }

    fn value(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.value(x)).collect()),
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, x)| (self.text(k), self.value(x)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// A status, or a list of acceptable statuses.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Statuses {
    One(u16),
    Any(Vec<u16>),
}

impl Statuses {
    fn allows(&self, status: u16) -> bool {
        match self {
            Statuses::One(s) => *s == status,
            Statuses::Any(list) => list.contains(&status),
        }
    }
}

// ----- answers -----

/// One answer, raw and parsed.
#[derive(Debug, Clone)]
struct Got {
    status: u16,
    headers: HeaderMap,
    bytes: Vec<u8>,
    json: Value,
}

impl Got {
    fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

fn is_stable_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 64
        && code.starts_with(|c: char| c.is_ascii_lowercase())
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The rules every error body follows.
fn check_error_body(label: &str, status: u16, json: &Value, text: &str) {
    let code = json["error"]["code"].as_str().unwrap_or("");
    assert!(
        is_stable_code(code),
        "{label}: {status} without a stable error.code: {text:.300}"
    );
    let message = json["error"]["message"].as_str().unwrap_or("");
    assert!(
        !message.trim().is_empty(),
        "{label}: {status} without an error.message: {text:.300}"
    );
}

/// Everything the suite received, for the final audit.
struct Seen {
    who: String,
    label: String,
    text: String,
}

/// A server, its client and the log of every answer.
struct Suite {
    s: TestServer,
    seen: Mutex<Vec<Seen>>,
}

impl Suite {
    async fn start(toml: &str) -> Suite {
        Suite {
            s: TestServer::start(toml).await,
            seen: Mutex::new(Vec::new()),
        }
    }

    fn remember(&self, who: &str, label: &str, text: String) {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Seen {
                who: who.to_string(),
                label: label.to_string(),
                text,
            });
    }

    /// Sends, reads the whole answer (within [`PATIENCE`]), checks the rules of every answer, logs it.
    async fn call(&self, who: &str, label: &str, req: reqwest::RequestBuilder) -> Got {
        let got = tokio::time::timeout(PATIENCE, async {
            let resp = req
                .send()
                .await
                .unwrap_or_else(|e| panic!("{label}: request failed: {e:?}"));
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let bytes = resp
                .bytes()
                .await
                .unwrap_or_else(|e| panic!("{label}: body not read: {e:?}"))
                .to_vec();
            let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            Got {
                status,
                headers,
                bytes,
                json,
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{label}: no answer within {PATIENCE:?}"));
        let text = got.text();
        assert!(got.status < 500, "{label}: {} {text:.500}", got.status);
        // 431 comes from the HTTP layer itself, before any handler; it has no body of ours.
        if (400..500).contains(&got.status) && got.status != 431 {
            check_error_body(label, got.status, &got.json, &text);
        }
        self.remember(who, label, text);
        got
    }

    /// Builds a request from a spec with `key` (if any) as `X-API-Key`.
    fn build(&self, spec: &Spec, vars: &Vars, key: Option<&str>) -> reqwest::RequestBuilder {
        let method = reqwest::Method::from_bytes(spec.method.as_bytes()).expect("method");
        let url = format!("{}{}", self.s.url, vars.text(&spec.path));
        let mut req = self.s.http.request(method, url);
        if let Some(key) = key {
            req = req.header("x-api-key", key);
        }
        let mut has_type = false;
        for (name, value) in &spec.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).expect("header name");
            has_type |= name == "content-type";
            let value = HeaderValue::from_bytes(vars.text(value).as_bytes()).expect("header value");
            req = req.header(name, value);
        }
        if let Some(body) = &spec.body {
            if matches!(body, Body::Json(_)) && !has_type {
                req = req.header("content-type", "application/json");
            }
            req = req.body(body.bytes(vars));
        }
        req
    }

    async fn json(
        &self,
        who: &str,
        key: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Got {
        let spec = Spec {
            method: method.to_string(),
            path: path.to_string(),
            headers: Vec::new(),
            body: body.map(Body::Json),
        };
        let label = format!("{who} {method} {path}");
        self.call(who, &label, self.build(&spec, &Vars::default(), Some(key)))
            .await
    }

    /// A new account and a key (`(account_id, key, key_id)`).
    async fn account(&self, name: &str) -> (String, String, String) {
        let a = self
            .json(
                "admin",
                ADMIN,
                "POST",
                "/v1/accounts",
                Some(json!({"name": name, "plan": "free"})),
            )
            .await;
        assert_eq!(a.status, 201, "{}", a.text());
        let id = a.json["id"].as_str().expect("account id").to_string();
        let (key, key_id) = self.key(&id).await;
        (id, key, key_id)
    }

    /// A new key of an account (`(key, key_id)`).
    async fn key(&self, account: &str) -> (String, String) {
        let k = self
            .json(
                "admin",
                ADMIN,
                "POST",
                &format!("/v1/accounts/{account}/keys"),
                Some(json!({"name": "k"})),
            )
            .await;
        assert_eq!(k.status, 201, "{}", k.text());
        (
            k.json["key"].as_str().expect("key").to_string(),
            k.json["id"].as_str().expect("key id").to_string(),
        )
    }

    async fn publish(&self, who: &str, key: &str, doc: &Value) -> String {
        let w = self
            .json(who, key, "POST", "/v1/workflows", Some(doc.clone()))
            .await;
        assert_eq!(w.status, 201, "{}", w.text());
        let id = w.json["id"].as_str().expect("workflow id").to_string();
        let p = self
            .json(
                who,
                key,
                "POST",
                &format!("/v1/workflows/{id}/publish"),
                None,
            )
            .await;
        assert_eq!(p.status, 200, "{}", p.text());
        id
    }

    async fn upload(&self, who: &str, key: &str, name: &str) -> String {
        let req = self
            .s
            .http
            .post(format!("{}/v1/plugins?name={name}", self.s.url))
            .header("x-api-key", key)
            .header("content-type", "application/wasm")
            .body(common::shipped(name).to_vec());
        let p = self.call(who, &format!("{who} upload {name}"), req).await;
        assert_eq!(p.status, 201, "{}", p.text());
        p.json["id"].as_str().expect("plugin id").to_string()
    }

    async fn invoke(&self, who: &str, key: &str, id: &str, body: Value) -> Got {
        self.json(
            who,
            key,
            "POST",
            &format!("/invoke/{id}/invoke"),
            Some(body),
        )
        .await
    }

    async fn runs_this_month(&self, account: &str) -> u64 {
        let a = self
            .json(
                "admin",
                ADMIN,
                "GET",
                &format!("/v1/accounts/{account}"),
                None,
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text());
        a.json["runs_this_month"].as_u64().expect("runs_this_month")
    }

    async fn wait_finished(&self, who: &str, key: &str, run: &str) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let r = self
                .json(who, key, "GET", &format!("/v1/runs/{run}"), None)
                .await;
            if r.status == 200 && r.json["status"] != "running" {
                return r.json;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "run {run} did not finish"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `/healthz` answers and a normal workflow still runs.
    async fn still_serves(&self, key: &str) {
        let h = self
            .call(
                "none",
                "healthz",
                self.s.http.get(format!("{}/healthz", self.s.url)),
            )
            .await;
        assert_eq!(h.status, 200, "{}", h.text());
        let id = self
            .publish("alive", key, &common::template_workflow())
            .await;
        let r = self
            .invoke("alive", key, &id, json!({"input": "still"}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json["status"], "success", "{}", r.text());
        assert_eq!(r.json["output"], "Hello, still!");
    }

    /// No answer holds a stored key hash; no answer to `stranger` holds any of `foreign`.
    fn audit(&self, keys: &[&str], stranger: Option<(&str, &[String])>) {
        let hashes: Vec<String> = keys.iter().map(|k| pipecat::keys::hash(k)).collect();
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        assert!(!seen.is_empty());
        for s in seen.iter() {
            for h in &hashes {
                assert!(
                    !s.text.contains(h.as_str()),
                    "{}: a stored key hash in the answer",
                    s.label
                );
            }
            if let Some((who, ids)) = stranger
                && s.who == who
            {
                for id in ids {
                    assert!(
                        !s.text.contains(id.as_str()),
                        "{}: {id} of another account in the answer: {:.300}",
                        s.label,
                        s.text
                    );
                }
            }
        }
    }
}

// ----- WebSocket -----

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The upgrade request of workflow `id`, with each of `keys` as an `X-API-Key` header.
fn ws_request(
    t: &Suite,
    id: &str,
    keys: &[&str],
    query: &str,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let url = format!(
        "{}/invoke/{id}/ws{query}",
        t.s.url.replacen("http", "ws", 1)
    );
    let mut req = url.into_client_request().expect("request");
    for key in keys {
        req.headers_mut()
            .append("x-api-key", HeaderValue::from_str(key).expect("header"));
    }
    req
}

async fn ws_connect(t: &Suite, id: &str, keys: &[&str], query: &str) -> Socket {
    let req = ws_request(t, id, keys, query);
    let (socket, resp) = tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(req))
        .await
        .expect("upgrade in time")
        .expect("upgraded");
    assert_eq!(resp.status().as_u16(), 101);
    socket
}

/// A WebSocket upgrade refused before it happens: the HTTP status and JSON body.
async fn ws_refused(t: &Suite, id: &str, key: &str) -> (u16, Value) {
    let req = ws_request(t, id, &[key], "");
    match tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(req))
        .await
        .expect("an answer in time")
    {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let body = resp.body().as_deref().unwrap_or_default();
            let body = serde_json::from_slice(body).unwrap_or(Value::Null);
            (resp.status().as_u16(), body)
        }
        Err(e) => panic!("{id}: refused without an HTTP answer: {e}"),
        Ok(_) => panic!("{id}: upgraded although the workflow is not the caller's"),
    }
}

/// Connects without a key, authenticates with `key` in the first message and sends one invoke of `id`
/// (as `who`, for messages): the socket and the reply.
async fn ws_invoke_by_message(t: &Suite, who: &str, id: &str, key: &str) -> (Socket, Value) {
    let mut socket = ws_connect(t, id, &[], "").await;
    ws_send(&mut socket, json!({"type": "auth", "api_key": key})).await;
    assert_eq!(
        ws_recv(t, who, &mut socket).await.expect("ready")["type"],
        "ready"
    );
    ws_send(
        &mut socket,
        json!({"type": "invoke", "input": "1", "version": 1}),
    )
    .await;
    let reply = ws_recv(t, who, &mut socket).await.expect("reply");
    (socket, reply)
}

/// The next text message, or `Err(close code)`.
async fn ws_recv(t: &Suite, who: &str, socket: &mut Socket) -> Result<Value, u16> {
    loop {
        let message = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("a message in time");
        match message {
            Some(Ok(Message::Text(text))) => {
                let v: Value = serde_json::from_str(&text).expect("JSON message");
                let mut logged = v.clone();
                // `ready` echoes the id the client itself put in the URL.
                if logged["type"] == "ready" {
                    logged["workflow_id"] = Value::Null;
                }
                if logged["type"] == "error" {
                    let status = logged["error"]["status"].as_u64().unwrap_or(0);
                    assert!(status < 500, "{who} ws: {text}");
                    check_error_body(&format!("{who} ws"), status as u16, &logged, &text);
                }
                t.remember(who, &format!("{who} ws message"), logged.to_string());
                return Ok(v);
            }
            Some(Ok(Message::Close(frame))) => {
                return Err(frame.map_or(1005, |f| u16::from(f.code)));
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Err(1006),
        }
    }
}

async fn ws_send(socket: &mut Socket, v: Value) {
    socket
        .send(Message::Text(v.to_string().into()))
        .await
        .expect("sent");
}

// ----- auth -----

#[derive(Debug, Deserialize)]
struct AuthRoute {
    auth: String,
    method: String,
    path: String,
    ok: u16,
    #[serde(default)]
    body: Option<Body>,
}

#[derive(Debug, Deserialize)]
struct AuthCase {
    name: String,
    headers: Vec<(String, String)>,
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    applies: Option<String>,
    #[serde(default)]
    expect: Option<String>,
    #[serde(default)]
    or_status: Vec<u16>,
}

/// A well-formed key whose checksum is wrong in its last digit.
fn wrong_checksum(key: &str) -> String {
    let mut k = key.to_string();
    let last = k.pop().expect("non-empty");
    k.push(if last == '0' { '1' } else { '0' });
    k
}

#[tokio::test]
async fn every_bad_key_gets_the_same_401() {
    common::watchdog::arm();
    let t = Suite::start("").await;
    let (account_a, key_a, _) = t.account("a").await;
    let (_, key_b, _) = t.account("b").await;
    let (revoked, revoked_id) = t.key(&account_a).await;
    t.upload("a", &key_a, "calculator").await;
    let workflow = t.publish("a", &key_a, &common::template_workflow()).await;
    let run = t
        .invoke("a", &key_a, &workflow, json!({"input": "x"}))
        .await;
    let run = run.json["run_id"].as_str().expect("run id").to_string();
    let events = t
        .invoke(
            "a",
            &key_a,
            &workflow,
            json!({"input": "x", "mode": "async"}),
        )
        .await;
    let events_run = events.json["run_id"].as_str().expect("run id").to_string();
    t.wait_finished("a", &key_a, &events_run).await;

    // The revoked key worked until it was revoked.
    assert_eq!(
        t.json("a", &revoked, "GET", "/v1/workflows", None)
            .await
            .status,
        200
    );
    let r = t
        .json(
            "admin",
            ADMIN,
            "DELETE",
            &format!("/v1/keys/{revoked_id}"),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());

    let mut vars = Vars::default();
    vars.set("key_a", key_a.clone())
        .set("key_b", key_b.clone())
        .set("admin", ADMIN)
        .set("wrong_checksum", wrong_checksum(&key_a))
        .set("truncated", &key_a[..key_a.len() - 1])
        .set("upper", key_a.to_uppercase())
        .set("unknown", pipecat::keys::generate_live())
        .set("revoked", revoked.clone())
        .set("big", format!("pc_live_{}", "A".repeat(64 * 1024)))
        .set("account", account_a.clone())
        .set("workflow", workflow.clone())
        .set("run", run.clone())
        .set("events_run", events_run.clone())
        .set("plugin", "calculator")
        .set("missing_key_id", Uuid::now_v7().to_string());
    assert!(pipecat::keys::is_well_formed_live(vars.get("unknown")));

    let routes: Vec<AuthRoute> = cases("auth.json", "routes");
    let bad_keys: Vec<AuthCase> = cases("auth.json", "cases");
    let used_before = t.runs_this_month(&account_a).await;
    let mut reference: Option<Got> = None;
    let (mut refused, mut controls, mut invoked) = (0, 0, 0);
    for route in &routes {
        for case in &bad_keys {
            if case.applies.as_deref().is_some_and(|a| a != route.auth) {
                continue;
            }
            let mut vars = vars.clone();
            vars.set(
                "key",
                if route.auth == "admin" {
                    ADMIN
                } else {
                    key_a.as_str()
                },
            );
            let mut path = route.path.clone();
            if let Some(q) = &case.query {
                path = format!("{path}?{q}");
            }
            let spec = Spec {
                method: route.method.clone(),
                path,
                headers: case.headers.clone(),
                body: route.body.clone(),
            };
            let label = format!("{} {} [{}]", route.method, route.path, case.name);
            let got = t.call("auth", &label, t.build(&spec, &vars, None)).await;
            if case.expect.as_deref() == Some("ok") {
                assert_eq!(got.status, route.ok, "{label}: {}", got.text());
                controls += 1;
                if route.path.starts_with("/invoke/") {
                    invoked += 1;
                }
                continue;
            }
            if case.or_status.contains(&got.status) {
                continue;
            }
            assert_eq!(got.status, 401, "{label}: {}", got.text());
            assert_eq!(got.code(), "unauthorized", "{label}");
            let first = reference.get_or_insert_with(|| got.clone());
            assert_eq!(
                got.bytes,
                first.bytes,
                "{label}: a different 401 body: {} vs {}",
                got.text(),
                first.text()
            );
            assert_eq!(got.content_type(), first.content_type(), "{label}");
            assert!(
                !got.headers.contains_key("ratelimit-remaining"),
                "{label}: a refused key reveals rate state"
            );
            refused += 1;
        }
    }
    assert!(refused > 400, "only {refused} refusals");
    assert!(controls >= routes.len() * 2);
    // Refused invocations are not runs; the accepted controls are.
    assert_eq!(t.runs_this_month(&account_a).await, used_before + invoked);

    t.still_serves(&key_a).await;
    t.audit(&[&key_a, &key_b, &revoked, ADMIN], None);
}

#[tokio::test]
async fn websocket_refuses_bad_keys_before_any_run() {
    common::watchdog::arm();
    let t = Suite::start("").await;
    let (account, key, _) = t.account("a").await;
    let (revoked, revoked_id) = t.key(&account).await;
    assert_eq!(
        t.json(
            "admin",
            ADMIN,
            "DELETE",
            &format!("/v1/keys/{revoked_id}"),
            None
        )
        .await
        .status,
        204
    );
    let id = t.publish("a", &key, &common::template_workflow()).await;
    let used = t.runs_this_month(&account).await;
    let wrong = wrong_checksum(&key);
    let unknown = pipecat::keys::generate_live();

    // A bad key in the header: closed with 1008 before `ready`.
    let header_cases: Vec<(&str, Vec<&str>)> = vec![
        ("malformed", vec!["nonsense"]),
        ("empty", vec![""]),
        ("wrong checksum", vec![&wrong]),
        ("unknown", vec![&unknown]),
        ("revoked", vec![&revoked]),
        ("admin key", vec![ADMIN]),
        ("duplicate valid keys", vec![&key, &key]),
        ("valid then bad", vec![&key, "nonsense"]),
    ];
    for (name, keys) in &header_cases {
        let mut socket = ws_connect(&t, &id, keys, "").await;
        assert_eq!(ws_recv(&t, "ws", &mut socket).await, Err(1008), "{name}");
    }
    // A key only in the query string is ignored: the server waits for an `auth` message, and an
    // `invoke` in its place closes the connection.
    for query in [format!("?api_key={key}"), format!("?key={key}")] {
        let mut socket = ws_connect(&t, &id, &[], &query).await;
        ws_send(&mut socket, json!({"type": "invoke", "input": "x"})).await;
        assert_eq!(ws_recv(&t, "ws", &mut socket).await, Err(1008), "{query}");
    }
    // A bad key in the `auth` message.
    for bad in [
        "nonsense",
        wrong.as_str(),
        unknown.as_str(),
        revoked.as_str(),
        ADMIN,
        "",
    ] {
        let mut socket = ws_connect(&t, &id, &[], "").await;
        ws_send(&mut socket, json!({"type": "auth", "api_key": bad})).await;
        assert_eq!(ws_recv(&t, "ws", &mut socket).await, Err(1008), "{bad:?}");
    }
    // The control: a good key in the header runs.
    let mut socket = ws_connect(&t, &id, &[&key], "").await;
    assert_eq!(
        ws_recv(&t, "ws", &mut socket).await.expect("ready")["type"],
        "ready"
    );
    ws_send(&mut socket, json!({"type": "invoke", "input": "ws"})).await;
    let finished = loop {
        let event = ws_recv(&t, "ws", &mut socket).await.expect("event");
        if event["type"] == "run_finished" {
            break event;
        }
    };
    assert_eq!(finished["output"], "Hello, ws!");
    assert_eq!(t.runs_this_month(&account).await, used + 1);
    t.still_serves(&key).await;
    t.audit(&[&key, &revoked, ADMIN], None);
}

// ----- tenancy -----

#[derive(Debug, Deserialize)]
struct TenancyCase {
    name: String,
    #[serde(flatten)]
    spec: Spec,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    owner: Option<u16>,
    #[serde(default)]
    destructive: bool,
    #[serde(default)]
    snapshot: bool,
}

fn llm_config(llm: &FakeLlm) -> String {
    format!(
        "[[providers]]\nname = \"openai\"\nkind = \"openai\"\nbase_url = \"{}\"\n",
        llm.openai_base_url()
    )
}

#[tokio::test]
async fn another_accounts_objects_are_missing() {
    common::watchdog::arm();
    let llm = FakeLlm::start().await;
    let t = Suite::start(&llm_config(&llm)).await;
    let (account_a, key_a, key_a_id) = t.account("a").await;
    let (account_b, key_b, _) = t.account("b").await;
    let (spare, spare_id) = t.key(&account_a).await;

    // A's objects: a plugin, a published workflow, finished runs (one with kept events), an
    // idempotent run and a run still in flight.
    let plugin_id = t.upload("a", &key_a, "calculator").await;
    let workflow = t.publish("a", &key_a, &common::calculator_workflow()).await;
    let run = t
        .invoke("a", &key_a, &workflow, json!({"input": "1 + 2"}))
        .await;
    assert_eq!(run.json["status"], "success", "{}", run.text());
    let run = run.json["run_id"].as_str().expect("run id").to_string();
    let events = t
        .invoke(
            "a",
            &key_a,
            &workflow,
            json!({"input": "1 + 2", "mode": "async"}),
        )
        .await;
    let events_run = events.json["run_id"].as_str().expect("run id").to_string();
    t.wait_finished("a", &key_a, &events_run).await;
    let idem_key = format!("idem-{}", Uuid::now_v7());
    let idem = t
        .call(
            "a",
            "a idempotent invoke",
            t.s.http
                .post(format!("{}/invoke/{workflow}/invoke", t.s.url))
                .header("x-api-key", &key_a)
                .header("idempotency-key", &idem_key)
                .json(&json!({"input": "2 + 2"})),
        )
        .await;
    assert_eq!(idem.status, 200, "{}", idem.text());
    let idem_run = idem.json["run_id"].as_str().expect("run id").to_string();
    let chat = t
        .publish(
            "a",
            &key_a,
            &json!({"name": "chat", "nodes": [{"id": "chat", "type": "llm", "provider": "openai",
                "model": "m", "prompt": "{{ input }}"}], "edges": [], "output": "chat"}),
        )
        .await;
    llm.push(Reply::Delayed(
        Duration::from_secs(600),
        Box::new(Reply::text("never")),
    ));
    let live = t
        .invoke(
            "a",
            &key_a,
            &chat,
            json!({"input": "hold", "mode": "async"}),
        )
        .await;
    assert_eq!(live.status, 202, "{}", live.text());
    let live_run = live.json["run_id"].as_str().expect("run id").to_string();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while llm.request_count() < 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run never reached the LLM"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // B's own objects, so that B's lists are not trivially empty.
    let b_workflow = t.publish("b", &key_b, &common::template_workflow()).await;
    let b_run = t
        .invoke("b", &key_b, &b_workflow, json!({"input": "b"}))
        .await;
    assert_eq!(b_run.status, 200);

    let mut vars = Vars::default();
    vars.set("workflow", workflow.clone())
        .set("run", run.clone())
        .set("events_run", events_run.clone())
        .set("live_run", live_run.clone())
        .set("plugin", "calculator")
        .set("spare_key_id", spare_id.clone())
        .set("idem_key", idem_key.clone());
    let mut missing = vars.clone();
    for name in ["workflow", "run", "events_run", "live_run", "spare_key_id"] {
        missing.set(name, Uuid::now_v7().to_string());
    }
    missing.set("plugin", "no-such-plugin");

    let list: Vec<TenancyCase> = cases("tenancy.json", "cases");
    let snapshot = async |t: &Suite| -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for c in list.iter().filter(|c| c.snapshot) {
            let got = t
                .call(
                    "a",
                    &format!("a snapshot {}", c.name),
                    t.build(&c.spec, &vars, Some(&key_a)),
                )
                .await;
            assert_eq!(got.status, 200, "{}: {}", c.name, got.text());
            out.push(got.bytes);
        }
        out
    };
    let before = snapshot(&t).await;
    let used_a = t.runs_this_month(&account_a).await;
    let used_b = t.runs_this_month(&account_b).await;

    let mut refused = 0;
    for c in &list {
        let label = format!("b {}", c.name);
        let got = t
            .call("b", &label, t.build(&c.spec, &vars, Some(&key_b)))
            .await;
        let status = c.status.unwrap_or(404);
        assert_eq!(got.status, status, "{label}: {}", got.text());
        if status != 404 {
            continue;
        }
        refused += 1;
        if let Some(code) = &c.code {
            assert_eq!(got.code(), code, "{label}");
        }
        let absent = t
            .call(
                "b",
                &format!("{label} (missing)"),
                t.build(&c.spec, &missing, Some(&key_b)),
            )
            .await;
        assert_eq!(absent.status, 404, "{label} (missing): {}", absent.text());
        assert_eq!(
            got.bytes,
            absent.bytes,
            "{label}: differs from a missing object: {} vs {}",
            got.text(),
            absent.text()
        );
        assert!(got.headers.get("idempotent-replayed").is_none(), "{label}");
    }
    assert!(refused >= 25, "{refused}");

    // B with A's idempotency key on B's own workflow: a run of its own, not A's replay.
    let own = t
        .call(
            "b",
            "b idempotent invoke",
            t.s.http
                .post(format!("{}/invoke/{b_workflow}/invoke", t.s.url))
                .header("x-api-key", &key_b)
                .header("idempotency-key", &idem_key)
                .json(&json!({"input": "2 + 2"})),
        )
        .await;
    assert_eq!(own.status, 200, "{}", own.text());
    assert_eq!(own.json["output"], "Hello, 2 + 2!");

    // The WebSocket: B's invoke and cancel of A's objects are refused like missing ones, whichever way
    // B authenticates.
    // With the key in the header, the upgrade itself is refused, exactly like a missing workflow.
    let ws_b = ws_refused(&t, &workflow, &key_b).await;
    let ws_missing = ws_refused(&t, &Uuid::now_v7().to_string(), &key_b).await;
    assert_eq!(ws_b.0, 404, "{ws_b:?}");
    assert_eq!(ws_b.1["error"]["code"], "workflow_not_found", "{ws_b:?}");
    assert_eq!(ws_b, ws_missing);
    // With the key in the first message, the invoke is refused like one of a missing workflow.
    let (_, missing_by_message) =
        ws_invoke_by_message(&t, "b", &Uuid::now_v7().to_string(), &key_b).await;
    let (mut socket, by_message) = ws_invoke_by_message(&t, "b", &workflow, &key_b).await;
    assert_eq!(
        by_message["error"]["code"], "workflow_not_found",
        "{by_message}"
    );
    assert_eq!(
        by_message["error"], missing_by_message["error"],
        "{by_message}"
    );
    ws_send(
        &mut socket,
        json!({"type": "cancel", "run_id": live_run, "id": 1}),
    )
    .await;
    let cancel_live = ws_recv(&t, "b", &mut socket).await.expect("reply");
    ws_send(
        &mut socket,
        json!({"type": "cancel", "run_id": Uuid::now_v7().to_string(), "id": 1}),
    )
    .await;
    let cancel_missing = ws_recv(&t, "b", &mut socket).await.expect("reply");
    assert_eq!(
        cancel_live["error"]["code"], "run_not_found",
        "{cancel_live}"
    );
    assert_eq!(cancel_live, cancel_missing);
    drop(socket);

    // Nothing B did changed A's objects, and none of it counted as a run of either account (except
    // B's own invocation).
    assert_eq!(snapshot(&t).await, before, "B changed A's objects");
    assert_eq!(t.runs_this_month(&account_a).await, used_a);
    assert_eq!(t.runs_this_month(&account_b).await, used_b + 1);
    let keys = t
        .json(
            "admin",
            ADMIN,
            "GET",
            &format!("/v1/accounts/{account_a}/keys"),
            None,
        )
        .await;
    assert!(
        keys.json["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .all(|k| k["revoked_at"].is_null())
    );

    // The owner's answers: the objects were there all along (destructive ones last).
    for c in list
        .iter()
        .filter(|c| !c.destructive)
        .chain(list.iter().filter(|c| c.destructive))
    {
        let Some(owner) = c.owner else { continue };
        let label = format!("a {}", c.name);
        let got = t
            .call("a", &label, t.build(&c.spec, &vars, Some(&key_a)))
            .await;
        assert_eq!(got.status, owner, "{label}: {}", got.text());
    }
    let live = t.wait_finished("a", &key_a, &live_run).await;
    assert_eq!(live["status"], "cancelled");

    // Sanity of the scan: A's own answers do carry A's ids.
    let a_ids = vec![
        account_a.clone(),
        key_a_id.clone(),
        spare_id.clone(),
        workflow.clone(),
        chat.clone(),
        run.clone(),
        events_run.clone(),
        idem_run.clone(),
        live_run.clone(),
        plugin_id.clone(),
    ];
    {
        let seen = t.seen.lock().unwrap_or_else(|e| e.into_inner());
        for id in [&workflow, &run, &live_run, &plugin_id] {
            assert!(
                seen.iter()
                    .any(|s| s.who == "a" && s.text.contains(id.as_str())),
                "{id} never seen in A's answers"
            );
        }
    }
    t.still_serves(&key_b).await;
    t.audit(&[&key_a, &key_b, &spare, ADMIN], Some(("b", &a_ids)));
}

// ----- input -----

#[derive(Debug, Deserialize)]
struct InputCase {
    name: String,
    #[serde(default = "key_a")]
    key: String,
    #[serde(flatten)]
    spec: Spec,
    status: Statuses,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    json_at: Option<(String, Value)>,
    #[serde(default)]
    then: Option<Box<FollowUp>>,
}

#[derive(Debug, Deserialize)]
struct FollowUp {
    #[serde(flatten)]
    spec: Spec,
    status: u16,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    json_at: Option<(String, Value)>,
}

fn key_a() -> String {
    "a".to_string()
}

fn check_at(label: &str, got: &Got, at: &Option<(String, Value)>) {
    if let Some((pointer, want)) = at {
        assert_eq!(
            got.json.pointer(pointer),
            Some(want),
            "{label}: {}",
            got.text()
        );
    }
}

#[tokio::test]
async fn hostile_requests_get_stable_4xx_answers() {
    common::watchdog::arm();
    let t = Suite::start("").await;
    let (account, key, _) = t.account("a").await;
    t.upload("a", &key, "calculator").await;
    let workflow = t.publish("a", &key, &common::template_workflow()).await;
    let run = t.invoke("a", &key, &workflow, json!({"input": "x"})).await;
    let mut vars = Vars::default();
    vars.set("workflow", workflow)
        .set("run", run.json["run_id"].as_str().expect("run id"))
        .set("account", account)
        .set("long_token", "t".repeat(10 * 1024));

    let list: Vec<InputCase> = cases("input.json", "cases");
    let mut counted = HashMap::new();
    let mut failed = Vec::new();
    for c in &list {
        // Each case on its own: a failing case is reported (its panic message above) and the others run.
        let case = AssertUnwindSafe(async {
            let k = match c.key.as_str() {
                "a" => Some(key.as_str()),
                "admin" => Some(ADMIN),
                "none" => None,
                other => panic!("{}: key {other}", c.name),
            };
            let got = t.call("a", &c.name, t.build(&c.spec, &vars, k)).await;
            assert!(
                c.status.allows(got.status),
                "{}: {} {}",
                c.name,
                got.status,
                got.text()
            );
            if let Some(code) = &c.code {
                assert_eq!(got.code(), code, "{}: {}", c.name, got.text());
            }
            check_at(&c.name, &got, &c.json_at);
            if let Some(then) = &c.then {
                let mut vars = vars.clone();
                vars.set("created", got.json["id"].as_str().expect("created id"));
                let label = format!("{} (then)", c.name);
                let next = t.call("a", &label, t.build(&then.spec, &vars, k)).await;
                assert_eq!(next.status, then.status, "{label}: {}", next.text());
                if let Some(code) = &then.code {
                    assert_eq!(next.code(), code, "{label}");
                }
                check_at(&label, &next, &then.json_at);
            }
            got.status
        });
        match case.catch_unwind().await {
            Ok(status) if status >= 400 => *counted.entry(status).or_insert(0) += 1,
            Ok(_) => {}
            Err(_) => failed.push(c.name.as_str()),
        }
    }
    assert!(failed.is_empty(), "failed cases: {failed:#?}");
    assert!(counted.values().sum::<usize>() > 80, "{counted:?}");
    t.still_serves(&key).await;
    t.audit(&[&key, ADMIN], None);
}

#[tokio::test]
async fn malformed_ids_in_every_path_are_missing_objects() {
    common::watchdog::arm();
    let t = Suite::start("").await;
    let (_, key, _) = t.account("a").await;
    let ids: Vec<String> = cases("ids.json", "ids");
    let template = common::template_workflow();
    let mut routes: Vec<(String, String)> = pipecat::routes::ROUTES
        .iter()
        .filter(|(_, p)| p.contains('{'))
        .map(|(m, p)| (m.to_uppercase(), (*p).to_string()))
        .collect();
    routes.push(("GET".to_string(), "/dashboard/{file}".to_string()));
    assert!(routes.len() >= 17, "{routes:?}");
    let (mut checked, mut failed) = (0, Vec::new());
    for (method, route) in &routes {
        let (key, body) = match (method.as_str(), route.as_str()) {
            (_, p) if p.starts_with("/dashboard") => (None, None),
            (_, p) if p.starts_with("/v1/accounts") => (Some(ADMIN), Some(json!({"name": "x"}))),
            ("DELETE", "/v1/keys/{key_id}") => (Some(ADMIN), None),
            ("PUT", _) => (Some(key.as_str()), Some(template.clone())),
            ("POST", p) if p.ends_with("/invoke") => {
                (Some(key.as_str()), Some(json!({"input": "x"})))
            }
            _ => (Some(key.as_str()), None),
        };
        let body = if matches!(method.as_str(), "GET" | "DELETE") {
            None
        } else {
            body
        };
        let code = match route.as_str() {
            p if p.starts_with("/v1/workflows") || p.starts_with("/invoke") => "workflow_not_found",
            p if p.starts_with("/v1/runs") => "run_not_found",
            p if p.starts_with("/v1/plugins") => "plugin_not_found",
            p if p.starts_with("/v1/accounts") => "account_not_found",
            p if p.starts_with("/v1/keys") => "key_not_found",
            _ => "not_found",
        };
        for id in &ids {
            let id = id
                .replace("{uuid}", &Uuid::now_v7().to_string())
                .replace("{long}", &"a".repeat(8 * 1024));
            let mut path = String::new();
            let mut rest = route.as_str();
            while let Some(open) = rest.find('{') {
                let close = rest[open..].find('}').expect("closing brace") + open;
                path.push_str(&rest[..open]);
                path.push_str(&id);
                rest = &rest[close + 1..];
            }
            path.push_str(rest);
            let spec = Spec {
                method: method.clone(),
                path: path.clone(),
                headers: Vec::new(),
                body: body.clone().map(Body::Json),
            };
            let label = format!("{method} {route} with {id:.40}");
            let case = AssertUnwindSafe(async {
                let got = t
                    .call("a", &label, t.build(&spec, &Vars::default(), key))
                    .await;
                if route.ends_with("/ws") {
                    // Not an upgrade request: refused as such, or as a missing workflow.
                    assert!(
                        (got.status == 400 && got.code() == "websocket_required")
                            || (got.status == 404 && got.code() == code),
                        "{label}: {} {}",
                        got.status,
                        got.text()
                    );
                } else {
                    assert_eq!(got.status, 404, "{label}: {}", got.text());
                    assert_eq!(got.code(), code, "{label}: {}", got.text());
                }
            });
            if case.catch_unwind().await.is_err() {
                failed.push(label);
            }
            checked += 1;
        }
    }
    assert!(failed.is_empty(), "failed cases: {failed:#?}");
    assert_eq!(checked, routes.len() * ids.len());

    // Over a real WebSocket, a malformed id is a missing workflow: refused before the upgrade.
    for id in ["not-a-uuid", "..%2F..%2Fetc%2Fpasswd", "a%00b"] {
        let (status, body) = ws_refused(&t, id, &key).await;
        assert_eq!(status, 404, "{id}: {body}");
        assert_eq!(body["error"]["code"], "workflow_not_found", "{id}: {body}");
    }
    t.still_serves(&key).await;
    t.audit(&[&key, ADMIN], None);
}

// ----- workflow documents -----

#[derive(Debug, Deserialize)]
struct DocCase {
    name: String,
    doc: Value,
    publish: Statuses,
    #[serde(default)]
    detail: Option<String>,
    #[serde(default)]
    invoke: bool,
}

/// Creates `doc`, publishes it, and checks the answer; returns the publish answer.
async fn create_and_publish(t: &Suite, key: &str, name: &str, doc: Value) -> (String, Got) {
    let created = t.json("a", key, "POST", "/v1/workflows", Some(doc)).await;
    assert_eq!(created.status, 201, "{name}: {}", created.text());
    let id = created.json["id"].as_str().expect("id").to_string();
    let published = t
        .json(
            "a",
            key,
            "POST",
            &format!("/v1/workflows/{id}/publish"),
            None,
        )
        .await;
    (id, published)
}

fn check_invalid(name: &str, got: &Got, detail: Option<&str>) {
    assert_eq!(got.status, 422, "{name}: {}", got.text());
    assert_eq!(got.code(), "invalid_workflow", "{name}");
    let details = got.json["error"]["details"].as_array().expect("details");
    assert!(!details.is_empty(), "{name}: no details");
    for d in details {
        assert!(
            is_stable_code(d["code"].as_str().unwrap_or("")),
            "{name}: {d}"
        );
        assert!(
            !d["message"].as_str().unwrap_or("").is_empty(),
            "{name}: {d}"
        );
    }
    if let Some(detail) = detail {
        assert!(
            details.iter().any(|d| d["code"] == detail),
            "{name}: no {detail} in {details:?}"
        );
    }
}

#[tokio::test]
async fn hostile_workflow_documents_are_refused_in_time() {
    common::watchdog::arm();
    // A body limit that lets 10,000 nodes with their edges through to validation.
    let t = Suite::start("[limits]\nmax_body_bytes = 8388608\n").await;
    let (_, key, _) = t.account("a").await;
    let mut vars = Vars::default();
    vars.set("long_template", "x".repeat(70 * 1024));
    for c in cases::<DocCase>("workflows.json", "cases") {
        let (id, got) = create_and_publish(&t, &key, &c.name, vars.value(&c.doc)).await;
        assert!(
            c.publish.allows(got.status),
            "{}: {} {}",
            c.name,
            got.status,
            got.text()
        );
        if got.status == 422 {
            check_invalid(&c.name, &got, c.detail.as_deref());
        }
        if c.invoke || got.status == 200 {
            let r = t.invoke("a", &key, &id, json!({"input": "in"})).await;
            assert_eq!(r.status, 200, "{}: {}", c.name, r.text());
            assert_eq!(r.json["status"], "success", "{}: {}", c.name, r.text());
        }
    }

    // 10,000 nodes (a chain): refused as too large, promptly enough to answer within the bound.
    let chain = |n: usize| {
        let nodes: Vec<Value> = (0..n)
            .map(|i| {
                let template = if i == 0 {
                    "{{ input }}".to_string()
                } else {
                    format!("{{{{ nodes.n{}.output }}}}", i - 1)
                };
                json!({"id": format!("n{i}"), "type": "template", "template": template})
            })
            .collect();
        let edges: Vec<Value> = (1..n)
            .map(|i| json!({"from": format!("n{}", i - 1), "to": format!("n{i}")}))
            .collect();
        json!({"name": format!("chain-{n}"), "nodes": nodes, "edges": edges, "output": format!("n{}", n - 1)})
    };
    let (_, got) = create_and_publish(&t, &key, "10,000-node chain", chain(10_000)).await;
    check_invalid("10,000-node chain", &got, Some("too_large"));

    // 10,000 unconnected nodes, and 10,000 nodes all in one cycle.
    let mut flat = chain(10_000);
    flat["edges"] = json!([]);
    let (_, got) = create_and_publish(&t, &key, "10,000 loose nodes", flat).await;
    check_invalid("10,000 loose nodes", &got, Some("too_large"));
    let mut ring = chain(10_000);
    ring["edges"]
        .as_array_mut()
        .expect("edges")
        .push(json!({"from": "n9999", "to": "n0"}));
    let (_, got) = create_and_publish(&t, &key, "10,000-node ring", ring).await;
    check_invalid("10,000-node ring", &got, None);

    // A chain as long as a run may go runs end to end; the largest chain publish allows is accepted and
    // its run stops at the engine's step limit, a recorded run error (not a request error, not a hang).
    let (id, got) = create_and_publish(&t, &key, "100-node chain", chain(100)).await;
    assert_eq!(got.status, 200, "{}", got.text());
    let r = t.invoke("a", &key, &id, json!({"input": "deep"})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json["status"], "success", "{}", r.text());
    assert_eq!(r.json["output"], "deep");
    let (id, got) = create_and_publish(&t, &key, "1,000-node chain", chain(1_000)).await;
    assert_eq!(got.status, 200, "{}", got.text());
    let r = t.invoke("a", &key, &id, json!({"input": "deep"})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json["status"], "error", "{}", r.text());
    assert_eq!(
        r.json["error"]["code"],
        "max_steps_exceeded",
        "{}",
        r.text()
    );
    let run = r.json["run_id"].as_str().expect("run id");
    let got = t
        .json("a", &key, "GET", &format!("/v1/runs/{run}"), None)
        .await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.json["status"], "error");
    // A 1,000-node cycle is found (no recursion blow-up).
    let mut ring = chain(1_000);
    ring["edges"]
        .as_array_mut()
        .expect("edges")
        .push(json!({"from": "n999", "to": "n0"}));
    let (_, got) = create_and_publish(&t, &key, "1,000-node ring", ring).await;
    check_invalid("1,000-node ring", &got, Some("cycle"));

    t.still_serves(&key).await;
    t.audit(&[&key, ADMIN], None);
}

/// `depth` nested arrays around `0`.
fn nested(depth: usize) -> String {
    format!("{}0{}", "[".repeat(depth), "]".repeat(depth))
}

#[tokio::test]
async fn nested_values_are_refused_or_kept_readable() {
    common::watchdog::arm();
    let t = Suite::start("").await;
    let (_, key, _) = t.account("a").await;
    let workflow = t.publish("a", &key, &common::template_workflow()).await;
    // Whatever depth the server accepts, what it stored stays readable: GET and the lists answer.
    let mut accepted = Vec::new();
    for depth in [
        8, 32, 60, 63, 64, 65, 100, 120, 125, 126, 127, 128, 129, 200,
    ] {
        let doc = format!(
            "{{\"name\": \"deep-{depth}\", \"extra\": {}}}",
            nested(depth)
        );
        let req =
            t.s.http
                .post(format!("{}/v1/workflows", t.s.url))
                .header("x-api-key", &key)
                .header("content-type", "application/json")
                .body(doc);
        let created = t
            .call("a", &format!("workflow at depth {depth}"), req)
            .await;
        if created.status == 201 {
            let id = created.json["id"]
                .as_str()
                .unwrap_or_else(|| panic!("depth {depth}: a 201 no JSON reader can read"));
            let got = t
                .json("a", &key, "GET", &format!("/v1/workflows/{id}"), None)
                .await;
            assert_eq!(got.status, 200, "depth {depth}: {}", got.text());
        } else {
            assert_eq!(created.status, 400, "depth {depth}: {}", created.text());
        }
        let body = format!("{{\"input\": {}}}", nested(depth));
        let req =
            t.s.http
                .post(format!("{}/invoke/{workflow}/invoke", t.s.url))
                .header("x-api-key", &key)
                .header("content-type", "application/json")
                .body(body);
        let invoked = t.call("a", &format!("input at depth {depth}"), req).await;
        if invoked.status == 200 {
            let run = invoked.json["run_id"].as_str().expect("run id");
            let got = t
                .json("a", &key, "GET", &format!("/v1/runs/{run}"), None)
                .await;
            assert_eq!(got.status, 200, "depth {depth}: {}", got.text());
            accepted.push(depth);
        } else {
            assert_eq!(invoked.status, 400, "depth {depth}: {}", invoked.text());
        }
        let lists = [
            "/v1/workflows".to_string(),
            "/v1/runs".to_string(),
            format!("/v1/workflows/{workflow}/runs"),
        ];
        for path in &lists {
            let got = t.json("a", &key, "GET", path, None).await;
            assert_eq!(
                got.status,
                200,
                "after depth {depth}, {path}: {}",
                got.text()
            );
        }
    }
    // Ordinary nesting is fine.
    assert!(
        accepted.contains(&8) && accepted.contains(&32),
        "{accepted:?}"
    );
    // The same limit holds on the WebSocket.
    let mut socket = ws_connect(&t, &workflow, &[&key], "").await;
    assert_eq!(
        ws_recv(&t, "a", &mut socket).await.expect("ready")["type"],
        "ready"
    );
    ws_send(
        &mut socket,
        serde_json::from_str(&format!("{{\"input\": {}}}", nested(120))).expect("JSON"),
    )
    .await;
    let reply = ws_recv(&t, "a", &mut socket).await.expect("reply");
    if reply["type"] == "error" {
        assert_eq!(reply["error"]["status"], 400, "{reply}");
    } else {
        let mut last = reply;
        while last["type"] != "run_finished" {
            last = ws_recv(&t, "a", &mut socket).await.expect("event");
        }
        let run = last["run_id"].as_str().expect("run id");
        let got = t
            .json("a", &key, "GET", &format!("/v1/runs/{run}"), None)
            .await;
        assert_eq!(got.status, 200, "{}", got.text());
    }
    t.still_serves(&key).await;
    t.audit(&[&key, ADMIN], None);
}
