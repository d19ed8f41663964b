//! Run history (CONTRACT §7): one run, and a workflow's runs newest first, paginated.

use axum::extract::State;
use pipecat_store::{RunQuery, RunRecord, RunStatus};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::AccountAuth;
use crate::error::{ApiError, ApiJson, ApiQuery, ApiResult};
use crate::routes::{PathParam, parse_id};
use crate::state::AppState;

/// Query of a run listing.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct RunsQuery {
    /// Only runs with this status (`success`, `error`, `cancelled`, `running`).
    pub status: Option<String>,
    /// Page size, 1 to 200 (default 50).
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only runs of this published version.
    pub version: Option<String>,
    /// Only runs started at or after this time (RFC 3339).
    pub since: Option<String>,
    /// Only runs started before this time (RFC 3339).
    pub until: Option<String>,
}

fn parse_time(raw: Option<&str>, name: &str) -> ApiResult<Option<time::OffsetDateTime>> {
    match raw {
        None | Some("") => Ok(None),
        Some(t) => time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            .map(Some)
            .map_err(|_| {
                ApiError::bad_request(
                    "invalid_time",
                    format!(
                        "`{name}` must be an RFC 3339 time like 2026-12-03T21:00:00Z, got {t:?}"
                    ),
                )
            }),
    }
}

impl RunsQuery {
    fn to_store(&self) -> ApiResult<RunQuery> {
        let status = match self.status.as_deref() {
            None | Some("") => None,
            Some(s) => Some(RunStatus::parse(s).ok_or_else(|| {
                ApiError::bad_request("invalid_status", format!("unknown status {s:?}"))
            })?),
        };
        let cursor = match self.cursor.as_deref() {
            None | Some("") => None,
            Some(c) => Some(
                Uuid::parse_str(c)
                    .map_err(|_| ApiError::bad_request("invalid_cursor", "malformed cursor"))?,
            ),
        };
        Ok(RunQuery {
            limit: self.limit.unwrap_or(50).clamp(1, 200),
            cursor,
            status,
            version: match self.version.as_deref() {
                None | Some("") => None,
                Some(v) => Some(v.parse::<u32>().map_err(|_| {
                    ApiError::bad_request(
                        "invalid_version",
                        format!("`version` must be a version number, got {v:?}"),
                    )
                })?),
            },
            since: parse_time(self.since.as_deref(), "since")?,
            until: parse_time(self.until.as_deref(), "until")?,
        })
    }
}

/// The public view of a stored run.
pub fn run_view(run: &RunRecord) -> Value {
    let mut view = run.record.clone();
    if !view.is_object() {
        view = json!({});
    }
    view["run_id"] = json!(run.run_id);
    view["workflow_id"] = json!(run.workflow_id);
    view["version"] = json!(run.version);
    view["status"] = json!(run.status.as_str());
    view
}

/// One run with its nodes, tool calls and usage.
#[utoipa::path(get, path = "/v1/runs/{run_id}", tag = "runs",
    responses((status = 200, description = "The run"), (status = 404, description = "run_not_found")))]
pub async fn get_run(
    auth: AccountAuth,
    State(state): State<AppState>,
    PathParam(run_id): PathParam,
) -> ApiResult<ApiJson<Value>> {
    let run_id = parse_id(&run_id, "run_not_found")?;
    let run = state
        .store
        .get_run(auth.account_id(), run_id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found("run_not_found", "run not found"))?;
    Ok(ApiJson(run_view(&run)))
}

async fn page(
    state: &AppState,
    account: Uuid,
    workflow: Option<Uuid>,
    query: &RunsQuery,
) -> ApiResult<Value> {
    let page = state
        .store
        .list_runs(account, workflow, query.to_store()?)
        .await
        .map_err(ApiError::internal)?;
    Ok(json!({
        "runs": page.runs.iter().map(run_view).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor.map(|c| c.to_string()),
    }))
}

/// A workflow's runs, newest first.
#[utoipa::path(get, path = "/v1/workflows/{id}/runs", tag = "runs", params(RunsQuery),
    responses((status = 200, description = "`{\"runs\": [...], \"next_cursor\"}`")))]
pub async fn list_workflow_runs(
    auth: AccountAuth,
    State(state): State<AppState>,
    PathParam(id): PathParam,
    ApiQuery(query): ApiQuery<RunsQuery>,
) -> ApiResult<ApiJson<Value>> {
    let workflow = super::workflows::load(&state, &auth, &id).await?;
    Ok(ApiJson(
        page(&state, auth.account_id(), Some(workflow.id), &query).await?,
    ))
}

/// All runs of the account, newest first.
#[utoipa::path(get, path = "/v1/runs", tag = "runs", params(RunsQuery),
    responses((status = 200, description = "`{\"runs\": [...], \"next_cursor\"}`")))]
pub async fn list_runs(
    auth: AccountAuth,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<RunsQuery>,
) -> ApiResult<ApiJson<Value>> {
    Ok(ApiJson(
        page(&state, auth.account_id(), None, &query).await?,
    ))
}
