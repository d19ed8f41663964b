//! `GET /invoke/{workflow_id}/ws`: runs of one workflow over a WebSocket.
//!
//! # Protocol
//! - Authentication: the `X-API-Key` header of the upgrade request, or else a first message
//!   `{"type": "auth", "api_key": "…"}` within `[streaming] ws_auth_timeout_secs`. The server then sends
//!   `{"type": "ready", "workflow_id"}`. A bad key closes the connection with code 1008 before any run.
//!   The key is checked again before every message: once revoked, the next message closes the
//!   connection with 1008 (runs already started finish), and account changes apply to the next run.
//! - Runs: `{"type": "invoke", "input": …, "id"?: …, "version"?, "on_disconnect"?, "webhook"?}` (or just
//!   `{"input": …}`). Several runs may be in flight at once; their events (schema in [`crate::live`]) name
//!   their `run_id` and carry the message's `id` when it had one. Request-level failures answer
//!   `{"type": "error", "id", "error": {"code", "message", "status"}}` and start no run.
//! - `{"type": "cancel", "run_id"}` cancels a run of the account; `{"type": "ping"}` answers
//!   `{"type": "pong"}`. The server sends a ping frame every `[streaming] ping_secs`.
//! - A client that goes away cancels its runs (recorded `cancelled`) unless they asked
//!   `"on_disconnect": "continue"`.
//!
//! # Close codes
//! 1000 the client closed; 1001 the server is shutting down (after the runs in flight on the connection
//! finish); 1008 bad, missing or revoked key, or no `auth` message in time; 1009 a message over
//! `[streaming] ws_max_message_bytes`, or more messages than `[limits] ws_messages_per_second` (bursts of
//! `ws_message_burst`) allow; 4408 idle: no message for `ws_idle_timeout_secs` while no run was in flight.
//!
//! # Backpressure
//! Every message to the client must go out within `[limits] ws_send_timeout_secs`. A client that stops
//! reading (its TCP window full) is disconnected without a close frame (there is no room for one), and its
//! runs are handled as for any dropped connection, so it cannot hold runs, concurrency slots or buffers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;
use uuid::Uuid;

use crate::auth::{API_KEY_HEADER, AccountAuth, account_for_hash, account_for_key, check_rate};
use crate::error::ApiError;
use crate::live::{EVENT_BUFFER, event_type};
use crate::routes::invoke::{accept, parse_value};
use crate::runner::{self, RunRequest};
use crate::state::AppState;

/// Close code: normal closure.
pub const CLOSE_NORMAL: u16 = 1000;
/// Close code: the server is going away.
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code: policy violation (bad key).
pub const CLOSE_POLICY: u16 = 1008;
/// Close code: message too big.
pub const CLOSE_TOO_BIG: u16 = 1009;
/// Close code: idle timeout (application range, after HTTP 408).
pub const CLOSE_IDLE: u16 = 4408;

/// How the upgrade request authenticated.
enum Presented {
    /// A good `X-API-Key` header.
    Key(AccountAuth),
    /// A bad one.
    Bad,
    /// None: expect an `auth` message.
    Later,
}

/// Upgrades to a WebSocket that runs the workflow (protocol in the module docs).
#[utoipa::path(get, path = "/invoke/{workflow_id}/ws", tag = "invoke",
    responses(
        (status = 101, description = "WebSocket: send `{\"type\":\"invoke\",\"input\":…}`, receive run events"),
        (status = 400, description = "websocket_required: not a WebSocket upgrade request"),
        (status = 404, description = "workflow_not_found (with the key in `X-API-Key`; a key sent in the first message gets the same error as a message)"),
        (status = 429, description = "rate_limited")))]
pub async fn ws(
    auth: Result<AccountAuth, ApiError>,
    State(state): State<AppState>,
    Path(workflow_id): Path<String>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(e) => {
            return ApiError::bad_request(
                "websocket_required",
                format!("this route takes a WebSocket upgrade request: {e}"),
            )
            .into_response();
        }
    };
    let presented = match auth {
        Ok(a) => {
            // With the key in the header the workflow can be checked before upgrading: a missing or
            // another account's workflow is the same plain `404` as on REST.
            if let Err(e) = crate::routes::workflows::load(&state, &a, &workflow_id).await {
                return e.into_response();
            }
            Presented::Key(a)
        }
        Err(ApiError::Unauthorized) if headers.contains_key(API_KEY_HEADER) => Presented::Bad,
        Err(ApiError::Unauthorized) => Presented::Later,
        Err(e) => return e.into_response(),
    };
    let max = state.streaming.ws_max_message_bytes.max(1);
    let tracker = state.ws_connections.clone();
    upgrade
        .max_message_size(max.saturating_mul(2).max(max + 65_536))
        .on_upgrade(move |socket| {
            tracker.track_future(connection(state, workflow_id, presented, socket))
        })
}

/// How long one message to the client may take to go out (`[limits] ws_send_timeout_secs`).
fn send_timeout(state: &AppState) -> Duration {
    Duration::from_secs(state.limits.ws_send_timeout_secs.max(1))
}

/// Sends one message; `false` when the client is gone or did not take it within `within`.
async fn send_message(socket: &mut WebSocket, message: Message, within: Duration) -> bool {
    match tokio::time::timeout(within, socket.send(message)).await {
        Ok(result) => result.is_ok(),
        Err(_) => {
            tracing::info!("WebSocket client not reading: disconnecting it");
            false
        }
    }
}

async fn send(socket: &mut WebSocket, value: &Value, within: Duration) -> bool {
    send_message(socket, Message::Text(value.to_string().into()), within).await
}

async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    // A client that does not read gets no close frame: never wait long for it.
    let sent = tokio::time::timeout(
        Duration::from_secs(1),
        socket.send(Message::Close(Some(frame))),
    )
    .await;
    if !matches!(sent, Ok(Ok(()))) {
        return;
    }
    // The closing handshake: read (and drop) what the client still sends until its close frame, briefly.
    // Closing the TCP connection with unread data would reset it, and the client would lose the close
    // frame (e.g. a flooding client would see 1006 instead of 1008).
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while let Some(Ok(message)) = socket.recv().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// The per-connection message bucket (`[limits] ws_messages_per_second`, `ws_message_burst`).
struct MessageBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    updated: Instant,
}

impl MessageBucket {
    fn new(state: &AppState) -> Self {
        let burst = f64::from(state.limits.ws_message_burst.max(1));
        Self {
            rate: state.limits.ws_messages_per_second,
            burst,
            tokens: burst,
            updated: Instant::now(),
        }
    }

    /// Takes one token; `false` when the connection is over its message rate.
    fn take(&mut self) -> bool {
        if self.rate <= 0.0 || !self.rate.is_finite() {
            return true;
        }
        let now = Instant::now();
        let elapsed = now.duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

fn too_big(e: &axum::Error) -> bool {
    let text = e.to_string();
    text.contains("Space limit exceeded") || text.contains("Message too long")
}

/// Waits for the `auth` message; closes with 1008 (or 1009) when it does not come or is not good.
async fn authenticate(state: &AppState, socket: &mut WebSocket) -> Option<AccountAuth> {
    let wait = Duration::from_secs(state.streaming.ws_auth_timeout_secs.max(1));
    let message = match tokio::time::timeout(wait, socket.recv()).await {
        Err(_) => {
            close(
                socket,
                CLOSE_POLICY,
                "authentication timeout: send {\"type\":\"auth\",\"api_key\":…} first",
            )
            .await;
            return None;
        }
        Ok(None) => return None,
        Ok(Some(Err(e))) => {
            if too_big(&e) {
                close(socket, CLOSE_TOO_BIG, "message too big").await;
            }
            return None;
        }
        Ok(Some(Ok(m))) => m,
    };
    let text = match &message {
        Message::Text(t) if t.len() <= state.streaming.ws_max_message_bytes => t.as_str(),
        Message::Text(_) => {
            close(socket, CLOSE_TOO_BIG, "message too big").await;
            return None;
        }
        _ => "",
    };
    let value: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let key = (value["type"] == "auth")
        .then(|| value["api_key"].as_str())
        .flatten();
    let Some(key) = key else {
        close(
            socket,
            CLOSE_POLICY,
            "the first message must be {\"type\":\"auth\",\"api_key\":…}",
        )
        .await;
        return None;
    };
    match account_for_key(state, key.trim()).await {
        Ok(Some(auth)) if check_rate(state, &auth).is_ok() => Some(auth),
        Ok(Some(_)) => {
            close(socket, CLOSE_POLICY, "rate limited").await;
            None
        }
        Ok(None) | Err(_) => {
            close(socket, CLOSE_POLICY, "invalid API key").await;
            None
        }
    }
}

/// The connection after the upgrade.
async fn connection(
    state: AppState,
    workflow_id: String,
    presented: Presented,
    mut socket: WebSocket,
) {
    let auth = match presented {
        Presented::Key(auth) => auth,
        Presented::Bad => {
            close(&mut socket, CLOSE_POLICY, "invalid API key").await;
            return;
        }
        Presented::Later => match authenticate(&state, &mut socket).await {
            Some(auth) => auth,
            None => return,
        },
    };
    if !send(
        &mut socket,
        &json!({"type": "ready", "workflow_id": workflow_id}),
        send_timeout(&state),
    )
    .await
    {
        return;
    }
    let mut conn = Connection {
        state,
        workflow_id,
        auth,
        runs: HashMap::new(),
        events: mpsc::channel(EVENT_BUFFER),
    };
    conn.serve(&mut socket).await;
}

struct Connection {
    state: AppState,
    workflow_id: String,
    auth: AccountAuth,
    /// Runs in flight on this connection → the `id` of the message that started each.
    runs: HashMap<Uuid, Option<Value>>,
    events: (mpsc::Sender<Arc<Value>>, mpsc::Receiver<Arc<Value>>),
}

impl Connection {
    async fn serve(&mut self, socket: &mut WebSocket) {
        let every = Duration::from_secs(self.state.streaming.ping_secs.max(1));
        let mut ping = tokio::time::interval_at(Instant::now() + every, every);
        let idle = Duration::from_secs(self.state.streaming.ws_idle_timeout_secs.max(1));
        let max = self.state.streaming.ws_max_message_bytes;
        let shutdown = self.state.shutdown.clone();
        let within = send_timeout(&self.state);
        let mut bucket = MessageBucket::new(&self.state);
        let mut last_heard = Instant::now();
        let mut draining = false;
        loop {
            tokio::select! {
                message = socket.recv() => {
                    last_heard = Instant::now();
                    if matches!(message, Some(Ok(_))) && !bucket.take() {
                        close(socket, CLOSE_POLICY, "message rate exceeded").await;
                        return;
                    }
                    match message {
                        None | Some(Ok(Message::Close(_))) => return,
                        Some(Err(e)) => {
                            if too_big(&e) {
                                close(socket, CLOSE_TOO_BIG, "message too big").await;
                            }
                            return;
                        }
                        Some(Ok(Message::Text(text))) => {
                            if text.len() > max {
                                close(socket, CLOSE_TOO_BIG, "message too big").await;
                                return;
                            }
                            if !self.still_authorized().await {
                                close(socket, CLOSE_POLICY, "the API key was revoked").await;
                                return;
                            }
                            let reply = self.handle(text.as_str(), draining).await;
                            if let Some(reply) = reply
                                && !send(socket, &reply, within).await
                            {
                                return;
                            }
                        }
                        Some(Ok(Message::Binary(_))) => {
                            let reply = error_reply(None, &ApiError::bad_request(
                                "unsupported_message", "send JSON text messages"));
                            if !send(socket, &reply, within).await {
                                return;
                            }
                        }
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    }
                }
                Some(event) = self.events.1.recv() => {
                    let mut event = Value::clone(&event);
                    let run_id = event["run_id"].as_str().and_then(|s| Uuid::parse_str(s).ok());
                    if let Some(run_id) = run_id {
                        if let Some(Some(id)) = self.runs.get(&run_id) {
                            event["id"] = id.clone();
                        }
                        if event_type(&event) == "run_finished" {
                            self.runs.remove(&run_id);
                        }
                    }
                    if !send(socket, &event, within).await {
                        return;
                    }
                    if draining && self.runs.is_empty() {
                        close(socket, CLOSE_GOING_AWAY, "server shutting down").await;
                        return;
                    }
                }
                _ = ping.tick() => {
                    if !send_message(socket, Message::Ping(Default::default()), within).await {
                        return;
                    }
                }
                () = tokio::time::sleep_until(last_heard + idle), if self.runs.is_empty() => {
                    close(socket, CLOSE_IDLE, "idle timeout").await;
                    return;
                }
                () = shutdown.cancelled(), if !draining => {
                    draining = true;
                    if self.runs.is_empty() {
                        close(socket, CLOSE_GOING_AWAY, "server shutting down").await;
                        return;
                    }
                }
            }
        }
    }

    /// Checks the connection's key again (a store cache hit) and takes the account as it is now, so a
    /// revoked key stops a connection at its next message and plan changes apply to the next run. Runs
    /// already started finish. A store error keeps the connection: the message then fails on its own.
    async fn still_authorized(&mut self) -> bool {
        match account_for_hash(&self.state, self.auth.key_hash).await {
            Ok(Some(fresh)) => {
                self.auth = fresh;
                true
            }
            Ok(None) => {
                tracing::info!(key_id = %self.auth.key_id, "WebSocket key revoked: closing");
                false
            }
            Err(_) => true,
        }
    }

    /// Handles one text message; returns the direct reply, if any.
    async fn handle(&mut self, text: &str, draining: bool) -> Option<Value> {
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                return Some(error_reply(
                    None,
                    &ApiError::InvalidJson(format!("the message is not JSON: {e}")),
                ));
            }
        };
        let id = value.get("id").cloned().filter(|v| !v.is_null());
        match value.get("type").and_then(Value::as_str) {
            Some("invoke") | None => {}
            Some("ping") => return Some(json!({"type": "pong", "id": id})),
            Some("cancel") => return Some(self.cancel(&value, id)),
            Some("auth") => {
                return Some(error_reply(
                    id,
                    &ApiError::bad_request(
                        "already_authenticated",
                        "this connection is already authenticated",
                    ),
                ));
            }
            Some(other) => {
                return Some(error_reply(
                    id,
                    &ApiError::bad_request(
                        "unsupported_message",
                        format!("unknown message type {other:?}: use invoke, cancel or ping"),
                    ),
                ));
            }
        }
        if draining {
            return Some(error_reply(id, &ApiError::ShuttingDown));
        }
        match self.invoke(value, id.clone()).await {
            Ok(()) => None,
            Err(e) => Some(error_reply(id, &e)),
        }
    }

    async fn invoke(&mut self, value: Value, id: Option<Value>) -> Result<(), ApiError> {
        // Each run counts against its key's request rate, as a REST invocation does.
        check_rate(&self.state, &self.auth)?;
        let body = parse_value(value)?;
        if body.run_async {
            return Err(ApiError::bad_request(
                "invalid_request",
                "`mode: async` is for REST; a WebSocket run streams its events",
            ));
        }
        let webhook = body
            .webhook
            .as_ref()
            .map(|w| crate::webhook::parse_target(w, &self.state.webhooks))
            .transpose()?;
        let accepted = accept(
            &self.state,
            &self.auth.account,
            &self.workflow_id,
            body.version,
        )
        .await?;
        let started = runner::start(
            &self.state,
            RunRequest {
                account_id: self.auth.account_id(),
                accepted,
                input: body.input,
                keep_events: true,
                attached: Some(self.events.0.clone()),
                on_disconnect: body.on_disconnect,
                webhook,
                idempotency: None,
                record_running: false,
            },
        )
        .await?;
        self.runs.insert(started.run_id, id);
        Ok(())
    }

    fn cancel(&self, value: &Value, id: Option<Value>) -> Value {
        let run = value["run_id"]
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .and_then(|run_id| self.state.live.get(self.auth.account_id(), run_id));
        match run {
            Some(run) => {
                run.cancel.cancel();
                json!({"type": "cancelling", "id": id, "run_id": run.run_id})
            }
            None => error_reply(
                id,
                &ApiError::not_found("run_not_found", "no running run with this run_id"),
            ),
        }
    }
}

fn error_reply(id: Option<Value>, e: &ApiError) -> Value {
    if let ApiError::Internal(err) = e {
        tracing::error!(error = ?err, "internal error on a WebSocket");
    }
    let mut error =
        json!({"code": e.code(), "message": e.to_string(), "status": e.status().as_u16()});
    if let ApiError::RunLimitExceeded {
        limit,
        used,
        resets_at,
        ..
    } = e
    {
        error["limit"] = json!(limit);
        error["used"] = json!(used);
        error["resets_at"] = json!(resets_at);
    }
    let mut reply = json!({"type": "error", "error": error});
    if let Some(id) = id {
        reply["id"] = id;
    }
    reply
}
