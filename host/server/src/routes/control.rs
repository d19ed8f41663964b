//! `POST /v1/runs/{run_id}/cancel`: stops a running run for real (the engine drops the node futures in
//! flight, so Wasm calls and provider requests end) and answers its record, now `cancelled`.

use std::time::Duration;

use axum::extract::State;
use pipecat_store::RunStatus;
use serde_json::{Value, json};

use crate::auth::AccountAuth;
use crate::error::{ApiError, ApiJson, ApiResult};
use crate::routes::runs::run_view;
use crate::routes::{PathParam, parse_id};
use crate::state::AppState;

/// How long a cancel request waits for the run's final record.
const WAIT_FOR_RECORD: Duration = Duration::from_secs(10);

/// Cancels a running run of the account.
#[utoipa::path(post, path = "/v1/runs/{run_id}/cancel", tag = "runs",
    responses(
        (status = 200, description = "The run's record after cancellation (`status: cancelled`)"),
        (status = 404, description = "run_not_found"),
        (status = 409, description = "run_not_running: the run had already finished (`status` in the body)")))]
pub async fn cancel_run(
    auth: AccountAuth,
    State(state): State<AppState>,
    PathParam(run_id): PathParam,
) -> ApiResult<ApiJson<Value>> {
    let run_id = parse_id(&run_id, "run_not_found")?;
    let account_id = auth.account_id();
    if let Some(live) = state.live.get(account_id, run_id) {
        tracing::info!(%run_id, "cancel requested");
        live.cancel.cancel();
        if tokio::time::timeout(WAIT_FOR_RECORD, live.finished())
            .await
            .is_err()
        {
            tracing::warn!(%run_id, "cancelled run not recorded within the wait");
        }
    }
    let mut run = state
        .store
        .get_run(account_id, run_id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found("run_not_found", "run not found"))?;
    match run.status {
        RunStatus::Cancelled => Ok(ApiJson(run_view(&run))),
        RunStatus::Running if state.live.get(account_id, run_id).is_none() => {
            // Recorded as running but executing nowhere: its server stopped before it finished.
            run.status = RunStatus::Cancelled;
            if run.record.is_object() {
                run.record["status"] = json!("cancelled");
                run.record["error"] = json!({"code": "cancelled",
                    "message": "the run was cancelled; the server running it had stopped"});
            }
            state
                .store
                .put_run(&run)
                .await
                .map_err(ApiError::internal)?;
            Ok(ApiJson(run_view(&run)))
        }
        RunStatus::Running => Ok(ApiJson(run_view(&run))),
        other => Err(ApiError::Conflict {
            code: "run_not_running",
            message: format!("the run already finished with status {:?}", other.as_str()),
        }),
    }
}
