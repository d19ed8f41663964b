//! `POST /invoke/{workflow_id}/invoke` (CONTRACT §5): every request-level check, in order, then one run.
//!
//! Order: key (`401`, and the per-key rate `429 rate_limited`) → content type (`415`) → body size (`413`)
//! → JSON (`400 invalid_json` / `missing_input`) → workflow and version (`404`) → a concurrency permit
//! (`503 overloaded`, never queued) → the monthly reservation (`429 run_limit_exceeded`). Only a request
//! that passed all of them counts as a run. The run itself executes in a task of its own, so a client
//! that disconnects neither cancels it nor loses its record; the record is durable before the answer.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use pipecat_store::{RunRecord, RunStatus, StoreError, WorkflowVersion};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::auth::AccountAuth;
use crate::error::{ApiError, ApiJson, ApiResult};
use crate::limits::{month_key, next_month_start, rfc3339};
use crate::routes::accounts::effective_limit;
use crate::state::AppState;

/// The invoke body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct InvokeRequest {
    /// The run's input: a string or any JSON value.
    #[schema(value_type = Object)]
    pub input: Value,
    /// Run this published version instead of the latest.
    pub version: Option<u32>,
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// Parses the body into `(input, version)`.
fn parse_body(bytes: &[u8]) -> ApiResult<(Value, Option<u32>)> {
    let body: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::InvalidJson(format!("the body is not JSON: {e}")))?;
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
    Ok((input, version))
}

async fn published_version(
    state: &AppState,
    account_id: Uuid,
    raw_id: &str,
    requested: Option<u32>,
) -> ApiResult<WorkflowVersion> {
    let id = Uuid::parse_str(raw_id).map_err(|_| ApiError::workflow_not_found())?;
    let workflow = state
        .store
        .get_workflow(account_id, id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(ApiError::workflow_not_found)?;
    let latest = workflow.published_version.ok_or_else(|| {
        ApiError::not_found("workflow_not_found", "workflow not found or not published")
    })?;
    let number = requested.unwrap_or(latest);
    state
        .store
        .get_workflow_version(account_id, id, number)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            ApiError::not_found(
                "version_not_found",
                format!("the workflow has no published version {number}"),
            )
        })
}

/// Runs the workflow's latest published version (or `"version": N`) on `input`.
#[utoipa::path(post, path = "/invoke/{workflow_id}/invoke", tag = "invoke", request_body = InvokeRequest,
    responses(
        (status = 200, description = "The run (`status` success, error or cancelled)"),
        (status = 400, description = "invalid_json / missing_input"), (status = 401, description = "unauthorized"),
        (status = 404, description = "workflow_not_found"), (status = 413, description = "payload_too_large"),
        (status = 415, description = "unsupported_media_type"),
        (status = 429, description = "run_limit_exceeded (limit, used, resets_at, Retry-After) or rate_limited"),
        (status = 503, description = "overloaded (Retry-After)")))]
pub async fn invoke(
    auth: AccountAuth,
    State(state): State<AppState>,
    Path(workflow_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    if !is_json(&headers) {
        return Err(ApiError::UnsupportedMediaType {
            expected: "application/json",
        });
    }
    let (input, requested) = parse_body(&body?)?;
    let account = &auth.account;
    let version = published_version(&state, account.id, &workflow_id, requested).await?;
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
    if state.shutdown.is_cancelled() {
        return Err(ApiError::ShuttingDown);
    }

    let now = OffsetDateTime::now_utc();
    let limit = effective_limit(&state, account);
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

    let run_id = Uuid::now_v7();
    tracing::Span::current().record("run_id", tracing::field::display(run_id));
    let task_state = state.clone();
    let account_id = account.id;
    let run = state.runs_in_flight.spawn(async move {
        let _permit = permit;
        let state = task_state;
        let tools = state
            .runtime
            .tools_for(&state.store, &workflow, &version)
            .await;
        let ctx = pipecat_engine::RunContext {
            run_id,
            events: None,
            cancel: None,
        };
        let outcome = state
            .runtime
            .engine
            .run(workflow, input.clone(), std::sync::Arc::new(tools), ctx)
            .await;
        let record = run_record(account_id, &version, &input, &outcome, now);
        state.store.put_run(&record).await.map(|()| outcome)
    });
    let outcome = match run.await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => {
            return Err(ApiError::internal(anyhow::anyhow!(
                "recording run {run_id}: {e}"
            )));
        }
        Err(e) => {
            return Err(ApiError::internal(anyhow::anyhow!(
                "run {run_id} task failed: {e}"
            )));
        }
    };
    tracing::info!(%run_id, status = ?outcome.status, duration_ms = outcome.duration_ms, "run finished");

    let mut response = ApiJson(outcome.response_body()).into_response();
    if let Some(limit) = limit {
        let h = response.headers_mut();
        h.insert("ratelimit-limit", HeaderValue::from(limit));
        h.insert(
            "ratelimit-remaining",
            HeaderValue::from(limit.saturating_sub(used)),
        );
        h.insert("ratelimit-reset", HeaderValue::from(retry_after_secs));
    }
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
