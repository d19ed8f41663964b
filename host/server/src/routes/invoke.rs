//! `POST /invoke/{workflow_id}/invoke` (CONTRACT §5): every request-level check, in order, then one run.
//!
//! Order: key (`401`, and the per-key rate `429 rate_limited`) → content type (`415`) → body size (`413`)
//! → JSON (`400 invalid_json` / `missing_input`, and the options: `mode`, `on_disconnect`, `webhook`) →
//! `Idempotency-Key` (a replay, `409`, `422`) → workflow and version (`404`) → a concurrency permit
//! (`503 overloaded`, never queued) → the monthly reservation (`429 run_limit_exceeded`). Only a request
//! that passed all of them counts as a run ([`accept`], shared with the WebSocket route). The run itself
//! executes in a task of its own ([`crate::runner`]), so a REST client that disconnects neither cancels it
//! nor loses its record; the record is durable before the answer. A streamed run (SSE) is cancelled when
//! its client goes away unless the body says `"on_disconnect": "continue"`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pipecat_store::{Account, Published, RunRecord, RunStatus, StoreError, WorkflowVersion};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::sync::OwnedSemaphorePermit;
use uuid::Uuid;

use crate::auth::AccountAuth;
use crate::error::{
    ApiError, ApiJson, ApiResult, MAX_JSON_DEPTH, is_json_content_type, nesting_too_deep,
    nests_deeper_than, value_depth,
};
use crate::idempotency;
use crate::limits::{AccountSlot, month_key, next_month_start, rfc3339};
use crate::routes::PathParam;
use crate::routes::accounts::effective_limit;
use crate::runner::{self, OnDisconnect, RunRequest};
use crate::state::AppState;

/// The invoke body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct InvokeRequest {
    /// The run's input: a string or any JSON value.
    #[schema(value_type = Object)]
    pub input: Value,
    /// Run this published version instead of the latest.
    pub version: Option<u32>,
    /// `sync` (default) or `async` (answer `202` at once; poll `GET /v1/runs/{id}`).
    pub mode: Option<String>,
    /// For streamed runs: `cancel` (default) or `continue` when the client goes away.
    pub on_disconnect: Option<String>,
    /// `{"url": "https://…", "secret"?: "…"}`: POST the final body there, signed (`Pipecat-Signature`).
    #[schema(value_type = Option<Object>)]
    pub webhook: Option<Value>,
}

/// A parsed invoke body (HTTP body or WebSocket message).
#[derive(Debug, Clone)]
pub struct InvokeBody {
    /// The run's input.
    pub input: Value,
    /// The requested version.
    pub version: Option<u32>,
    /// `"mode": "async"`.
    pub run_async: bool,
    /// What a disconnect of a streaming client does.
    pub on_disconnect: OnDisconnect,
    /// The raw `webhook` member.
    pub webhook: Option<Value>,
}

/// Parses the body (`400 nesting_too_deep` before parsing anything nested past the limit).
fn parse_body(bytes: &[u8]) -> ApiResult<InvokeBody> {
    if nests_deeper_than(bytes, MAX_JSON_DEPTH) {
        return Err(nesting_too_deep());
    }
    let body: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::InvalidJson(format!("the body is not JSON: {e}")))?;
    parse_value(body)
}

/// Parses an invoke object: `input` (required), `version`, `mode`, `on_disconnect`, `webhook`.
pub fn parse_value(body: Value) -> ApiResult<InvokeBody> {
    // The run record keeps the input a few levels down; past the limit it could not be read back.
    if value_depth(&body) > MAX_JSON_DEPTH {
        return Err(nesting_too_deep());
    }
    let Value::Object(mut obj) = body else {
        return Err(ApiError::MissingInput);
    };
    let input = match obj.remove("input") {
        None | Some(Value::Null) => return Err(ApiError::MissingInput),
        Some(input) => input,
    };
    let version = match obj.get("version") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    ApiError::bad_request("invalid_request", "`version` must be a positive integer")
                })?,
        ),
    };
    let run_async = match obj.get("mode") {
        None | Some(Value::Null) => false,
        Some(Value::String(m)) if m == "sync" => false,
        Some(Value::String(m)) if m == "async" => true,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_request",
                "`mode` must be \"sync\" or \"async\"",
            ));
        }
    };
    let on_disconnect = match obj.get("on_disconnect") {
        None | Some(Value::Null) => OnDisconnect::default(),
        Some(v) => v.as_str().and_then(OnDisconnect::parse).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_request",
                "`on_disconnect` must be \"cancel\" or \"continue\"",
            )
        })?,
    };
    let webhook = obj.remove("webhook").filter(|w| !w.is_null());
    Ok(InvokeBody {
        input,
        version,
        run_async,
        on_disconnect,
        webhook,
    })
}

async fn published_version(
    state: &AppState,
    account_id: Uuid,
    raw_id: &str,
    requested: Option<u32>,
) -> ApiResult<Arc<WorkflowVersion>> {
    let id = Uuid::parse_str(raw_id).map_err(|_| ApiError::workflow_not_found())?;
    match state
        .store
        .published_version(account_id, id, requested)
        .await
        .map_err(ApiError::internal)?
    {
        Published::Found(version) => Ok(version),
        Published::NoWorkflow => Err(ApiError::workflow_not_found()),
        Published::NotPublished => Err(ApiError::not_found(
            "workflow_not_found",
            "workflow not found or not published",
        )),
        Published::NoSuchVersion(number) => Err(ApiError::not_found(
            "version_not_found",
            format!("the workflow has no published version {number}"),
        )),
    }
}

/// A run that passed every request-level check: what to run, its concurrency permit and its reservation.
pub struct Accepted {
    /// The published version to run.
    pub version: Arc<WorkflowVersion>,
    /// Its parsed form.
    pub workflow: Arc<pipecat_engine::Workflow>,
    /// The run's concurrency permits, server-wide and of its account (held until the run ends).
    pub permit: (OwnedSemaphorePermit, Option<AccountSlot>),
    /// When the run was accepted.
    pub started_at: OffsetDateTime,
    /// The account's monthly limit (`None`: unlimited).
    pub limit: Option<u64>,
    /// Runs used this month, this one included.
    pub used: u64,
    /// Seconds until the monthly counter resets.
    pub retry_after_secs: u64,
}

impl Accepted {
    /// Adds the `RateLimit-*` headers of the monthly limit.
    pub fn rate_headers(&self, h: &mut HeaderMap) {
        if let Some(limit) = self.limit {
            h.insert("ratelimit-limit", HeaderValue::from(limit));
            h.insert(
                "ratelimit-remaining",
                HeaderValue::from(limit.saturating_sub(self.used)),
            );
            h.insert("ratelimit-reset", HeaderValue::from(self.retry_after_secs));
        }
    }
}

/// The request-level checks after the body, shared by REST, SSE, WebSocket and async invocations: the
/// workflow and version (`404`), a concurrency permit (`503`), the monthly reservation (`429`).
pub async fn accept(
    state: &AppState,
    account: &Account,
    workflow_id: &str,
    requested: Option<u32>,
) -> ApiResult<Accepted> {
    let version = published_version(state, account.id, workflow_id, requested).await?;
    let workflow = state.runtime.workflow(&version).map_err(|problems| {
        ApiError::internal(anyhow::anyhow!(
            "published version does not parse: {problems:?}"
        ))
    })?;

    let permit = state
        .run_slots
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::Overloaded)?;
    let account_slot = state
        .account_slots
        .try_acquire(account.id)
        .map_err(|limit| ApiError::AccountOverloaded { limit })?;
    let permit = (permit, account_slot);
    if state.shutdown.is_cancelled() {
        return Err(ApiError::ShuttingDown);
    }

    let now = OffsetDateTime::now_utc();
    let limit = effective_limit(state, account);
    let reset = next_month_start(now);
    let retry_after_secs = u64::try_from((reset - now).whole_seconds())
        .unwrap_or(0)
        .max(1);
    let used = match state
        .store
        .reserve_run(account.id, &month_key(now), limit.unwrap_or(u64::MAX))
        .await
    {
        Ok(used) => used,
        Err(StoreError::LimitExceeded { used, limit }) => {
            return Err(ApiError::RunLimitExceeded {
                limit,
                used,
                resets_at: rfc3339(reset),
                retry_after_secs,
            });
        }
        Err(e) => return Err(ApiError::internal(e)),
    };
    Ok(Accepted {
        version,
        workflow,
        permit,
        started_at: now,
        limit,
        used,
        retry_after_secs,
    })
}

fn wants_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|m| {
            m.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("text/event-stream")
        })
}

fn prefers_async(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("respond-async"))
}

/// Runs the workflow's latest published version (or `"version": N`) on `input`.
///
/// With `Accept: text/event-stream` the answer is the run's events as Server-Sent Events; with
/// `"mode": "async"` (or `Prefer: respond-async`) it is `202 {"run_id", "status": "running"}` at once; with
/// `Idempotency-Key` a retry answers the first request's response.
#[utoipa::path(post, path = "/invoke/{workflow_id}/invoke", tag = "invoke", request_body = InvokeRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key return the first response (24 h)"),
        ("Prefer" = Option<String>, Header, description = "`respond-async` for an async run")),
    responses(
        (status = 200, description = "The run (`status` success, error or cancelled); with `Accept: text/event-stream`, its events"),
        (status = 202, description = "Async run accepted: `{\"run_id\", \"status\": \"running\"}`"),
        (status = 400, description = "invalid_json / missing_input / invalid_request / invalid_webhook / webhook_not_allowed / webhook_not_configured / invalid_idempotency_key"),
        (status = 401, description = "unauthorized"),
        (status = 404, description = "workflow_not_found"),
        (status = 409, description = "idempotency_in_progress"),
        (status = 413, description = "payload_too_large"),
        (status = 415, description = "unsupported_media_type"),
        (status = 422, description = "idempotency_key_reused"),
        (status = 429, description = "run_limit_exceeded (limit, used, resets_at, Retry-After) or rate_limited"),
        (status = 503, description = "overloaded (Retry-After), or storage_unavailable: the store's disk writes are stalled (Retry-After)"),
        (status = 507, description = "storage_full: the disk holding the store is full; nothing was recorded")))]
pub async fn invoke(
    auth: AccountAuth,
    State(state): State<AppState>,
    PathParam(workflow_id): PathParam,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    if !is_json_content_type(&headers) {
        return Err(ApiError::UnsupportedMediaType {
            expected: "application/json",
        });
    }
    let bytes = body?;
    let request = parse_body(&bytes)?;
    let stream = wants_event_stream(&headers);
    let run_async = request.run_async || prefers_async(&headers);
    if stream && run_async {
        return Err(ApiError::bad_request(
            "invalid_request",
            "an async run answers 202 at once; follow its events at GET /v1/runs/{run_id}/events",
        ));
    }
    let webhook = request
        .webhook
        .as_ref()
        .map(|w| crate::webhook::parse_target(w, &state.webhooks))
        .transpose()?;
    let account_id = auth.account_id();
    let idem = idempotency::begin(&state, account_id, &headers, &workflow_id, &bytes).await?;
    if let idempotency::Begin::Replay(entry) = &idem {
        return crate::routes::stream::replay_response(&state, account_id, entry, stream).await;
    }
    let accepted = match accept(&state, &auth.account, &workflow_id, request.version).await {
        Ok(accepted) => accepted,
        Err(e) => {
            idem.release(&state, account_id).await;
            return Err(e);
        }
    };
    let mut rate = HeaderMap::new();
    accepted.rate_headers(&mut rate);
    let mut run = RunRequest {
        account_id,
        accepted,
        input: request.input,
        keep_events: stream || run_async,
        attached: None,
        on_disconnect: request.on_disconnect,
        webhook,
        idempotency: idem.claim(),
        record_running: run_async,
    };

    if stream {
        let (tx, rx) = tokio::sync::mpsc::channel(crate::live::EVENT_BUFFER);
        run.attached = Some(tx);
        let started = runner::start(&state, run).await?;
        let mut response = crate::routes::stream::sse(&state, started.run_id, rx).into_response();
        response.headers_mut().extend(rate);
        return Ok(response);
    }
    if run_async {
        run.idempotency = None;
        let started = match runner::start(&state, run).await {
            Ok(started) => started,
            Err(e) => {
                idem.release(&state, account_id).await;
                return Err(e);
            }
        };
        let body = json!({"run_id": started.run_id, "status": "running"});
        if let Some(claim) = idem.claim() {
            claim
                .complete(&state, account_id, 202, Some(started.run_id), &body)
                .await;
        }
        let mut response = (StatusCode::ACCEPTED, ApiJson(body)).into_response();
        let h = response.headers_mut();
        h.extend(rate);
        if let Ok(location) = HeaderValue::from_str(&format!("/v1/runs/{}", started.run_id)) {
            h.insert(header::LOCATION, location);
        }
        return Ok(response);
    }

    let started = runner::start(&state, run).await?;
    let run_id = started.run_id;
    let outcome = match started.task.await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => return Err(ApiError::internal(e)),
        Err(e) => {
            return Err(ApiError::internal(anyhow::anyhow!(
                "run {run_id} task failed: {e}"
            )));
        }
    };
    let mut response = ApiJson(outcome.response()).into_response();
    response.headers_mut().extend(rate);
    Ok(response)
}

/// The stored run record (CONTRACT §7).
pub fn run_record(
    account_id: Uuid,
    version: &WorkflowVersion,
    input: &Value,
    outcome: &pipecat_engine::RunOutcome,
    started_at: OffsetDateTime,
) -> RunRecord {
    let status = match outcome.status {
        pipecat_engine::RunStatus::Success => RunStatus::Success,
        pipecat_engine::RunStatus::Error => RunStatus::Error,
        pipecat_engine::RunStatus::Cancelled => RunStatus::Cancelled,
    };
    let record = json!({
        "run_id": outcome.run_id,
        "workflow_id": version.workflow_id,
        "version": version.version,
        "status": status.as_str(),
        "input": input,
        "output": outcome.output,
        "error": outcome.error,
        "tool_calls": outcome.tool_calls,
        "nodes": outcome.nodes,
        "usage": outcome.usage,
        "started_at": rfc3339(started_at),
        "duration_ms": outcome.duration_ms,
    });
    RunRecord {
        run_id: outcome.run_id,
        account_id,
        workflow_id: version.workflow_id,
        version: version.version,
        status,
        started_at,
        record,
    }
}
