//! Liveness and readiness.

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::error::ApiJson;
use crate::state::AppState;

/// `200` while the process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Up")))]
pub async fn healthz() -> ApiJson<Value> {
    ApiJson(json!({"status": "ok"}))
}

/// `200` when the store is open and writable and the server is not shutting down.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "Ready"), (status = 503, description = "Not ready")))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, ApiJson<Value>) {
    if state.shutdown.is_cancelled() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            ApiJson(json!({"status": "shutting_down"})),
        );
    }
    match state.store.check_ready().await {
        Ok(()) => (StatusCode::OK, ApiJson(json!({"status": "ready"}))),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                ApiJson(json!({"status": "not_ready"})),
            )
        }
    }
}
