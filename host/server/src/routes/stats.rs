//! `GET /v1/workflows/{id}/stats` (aggregates, never a scan of runs) and `GET /metrics` (Prometheus).

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{AccountAuth, is_admin_key, presented_key};
use crate::error::{ApiError, ApiJson, ApiQuery, ApiResult};
use crate::routes::PathParam;
use crate::state::AppState;
use crate::stats::query::Window;

/// Query of the stats route.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct StatsQuery {
    /// `1h` (minute buckets), `24h` (hour buckets), `30d` (day buckets) or `all` (the default; the chart
    /// buckets are the last 30 days).
    pub window: Option<String>,
}

/// A workflow's statistics: counts, success rate, error codes, latency percentiles of whole runs, of each
/// node, tool and version, tokens, and time buckets for charts.
#[utoipa::path(get, path = "/v1/workflows/{id}/stats", tag = "runs", params(StatsQuery),
    responses((status = 200, description = "The statistics"), (status = 400, description = "invalid_window"),
        (status = 404, description = "workflow_not_found")))]
pub async fn workflow_stats(
    auth: AccountAuth,
    State(state): State<AppState>,
    PathParam(id): PathParam,
    ApiQuery(query): ApiQuery<StatsQuery>,
) -> ApiResult<ApiJson<Value>> {
    let id = super::workflows::load(&state, &auth, &id).await?.id;
    let window = match query.window.as_deref() {
        None | Some("") => Window::All,
        Some(w) => Window::parse(w).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_window",
                format!("unknown window {w:?}; use 1h, 24h, 30d or all"),
            )
        })?,
    };
    state.monitor.settle().await;
    let mut body = state.monitor.stats(auth.account_id(), id, window);
    body["workflow_id"] = json!(id);
    Ok(ApiJson(body))
}

/// Prometheus metrics in the text exposition format. Open unless `[monitoring] metrics_require_key`
/// is set, in which case the admin key is required.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format 0.0.4"), (status = 401, description = "unauthorized")))]
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    if state.monitor.config.metrics_require_key {
        let key = presented_key(&headers).unwrap_or("");
        if !is_admin_key(&state, key) {
            return Err(ApiError::Unauthorized);
        }
    }
    state.monitor.settle().await;
    let store_bytes = state.store.size_on_disk().await.unwrap_or(0) as f64;
    let pool = state.runtime.sandbox.pool_info();
    let capacity = state.limits.max_concurrent_runs.max(1);
    let in_flight = capacity.saturating_sub(state.run_slots.available_permits());
    let gauges = [
        (
            "pipecat_runs_in_flight",
            "Runs executing now.",
            in_flight as f64,
        ),
        (
            "pipecat_runs_capacity",
            "Runs allowed to execute at once.",
            capacity as f64,
        ),
        (
            "pipecat_sandbox_pooling",
            "1 when the sandbox uses the pooling instance allocator.",
            if pool.pooling { 1.0 } else { 0.0 },
        ),
        (
            "pipecat_sandbox_pool_max_instances",
            "Instances the sandbox pool holds (0: on-demand allocation, no fixed limit).",
            f64::from(pool.max_concurrent_instances.unwrap_or(0)),
        ),
        (
            "pipecat_store_size_bytes",
            "Bytes the store occupies on disk.",
            store_bytes,
        ),
    ];
    let mut response = state.monitor.metrics.render(&gauges).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}
