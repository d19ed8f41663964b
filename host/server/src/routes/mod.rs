//! The HTTP surface: one module per route group, assembled by [`router`].

pub mod accounts;
pub mod control;
pub mod health;
pub mod invoke;
pub mod plugins;
pub mod runs;
pub mod stats;
pub mod stream;
pub mod workflows;
pub mod ws;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Request, State};
use axum::handler::Handler as _;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// Every route of the API as `(method, path)` in OpenAPI notation; `/openapi.json` documents each.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("post", "/v1/accounts"),
    ("get", "/v1/accounts"),
    ("get", "/v1/accounts/{id}"),
    ("patch", "/v1/accounts/{id}"),
    ("post", "/v1/accounts/{id}/keys"),
    ("get", "/v1/accounts/{id}/keys"),
    ("delete", "/v1/keys/{key_id}"),
    ("post", "/v1/plugins"),
    ("get", "/v1/plugins"),
    ("get", "/v1/plugins/{name}"),
    ("delete", "/v1/plugins/{name}"),
    ("post", "/v1/workflows"),
    ("get", "/v1/workflows"),
    ("get", "/v1/workflows/{id}"),
    ("put", "/v1/workflows/{id}"),
    ("delete", "/v1/workflows/{id}"),
    ("post", "/v1/workflows/{id}/publish"),
    ("get", "/v1/workflows/{id}/versions"),
    ("get", "/v1/workflows/{id}/runs"),
    ("get", "/v1/workflows/{id}/stats"),
    ("get", "/metrics"),
    ("post", "/invoke/{workflow_id}/invoke"),
    ("get", "/invoke/{workflow_id}/ws"),
    ("post", "/v1/runs/{run_id}/cancel"),
    ("get", "/v1/runs/{run_id}/events"),
    ("get", "/v1/runs/{run_id}"),
    ("get", "/v1/runs"),
    ("get", "/openapi.json"),
];

/// Parses an id from a path; anything malformed is answered like a missing object (`404 <code>`).
pub fn parse_id(raw: &str, code: &'static str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| {
        ApiError::not_found(
            code,
            format!("{} not found", code.trim_end_matches("_not_found")),
        )
    })
}

/// The one path parameter of a route, as text. A parameter that does not percent-decode to UTF-8 (`%FF`)
/// becomes the empty string, which names no object: it is answered like any other missing one, with the
/// route's own `404` code, instead of axum's plain-text `400`.
#[derive(Debug, Clone)]
pub struct PathParam(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathParam {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(PathParam(
            Path::<String>::from_request_parts(parts, state)
                .await
                .map(|Path(p)| p)
                .unwrap_or_default(),
        ))
    }
}

/// `GET /invoke/{workflow_id}/ws`: a workflow id that does not even decode is a missing workflow (`404`),
/// as on the REST route; everything else is [`ws::ws`].
async fn ws_route(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    req: Request,
) -> Response {
    if id.is_err() {
        return ApiError::workflow_not_found().into_response();
    }
    ws::ws.call(req, state).await
}

/// The routes, without the outer middleware (see [`crate::app`]).
pub fn router(state: &AppState) -> Router<AppState> {
    let json_limit = DefaultBodyLimit::max(state.limits.max_body_bytes);
    let plugin_limit = DefaultBodyLimit::max(state.limits.max_plugin_bytes);
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/openapi.json", get(crate::openapi::serve_openapi))
        .route(
            "/v1/accounts",
            post(accounts::create_account).get(accounts::list_accounts),
        )
        .route(
            "/v1/accounts/{id}",
            get(accounts::get_account).patch(accounts::patch_account),
        )
        .route(
            "/v1/accounts/{id}/keys",
            post(accounts::create_key).get(accounts::list_keys),
        )
        .route("/v1/keys/{key_id}", delete(accounts::revoke_key))
        .route(
            "/v1/workflows",
            post(workflows::create_workflow).get(workflows::list_workflows),
        )
        .route(
            "/v1/workflows/{id}",
            get(workflows::get_workflow)
                .put(workflows::replace_workflow)
                .delete(workflows::delete_workflow),
        )
        .route(
            "/v1/workflows/{id}/publish",
            post(workflows::publish_workflow),
        )
        .route("/v1/workflows/{id}/versions", get(workflows::list_versions))
        .route("/v1/workflows/{id}/runs", get(runs::list_workflow_runs))
        .route("/v1/workflows/{id}/stats", get(stats::workflow_stats))
        .route("/metrics", get(stats::metrics))
        .route("/dashboard", get(crate::dashboard::index))
        .route("/dashboard/", get(crate::dashboard::index))
        .route("/dashboard/{file}", get(crate::dashboard::asset))
        .route("/v1/runs", get(runs::list_runs))
        .route("/v1/runs/{run_id}", get(runs::get_run))
        .route("/invoke/{workflow_id}/invoke", post(invoke::invoke))
        .route("/invoke/{workflow_id}/ws", get(ws_route))
        .route("/v1/runs/{run_id}/cancel", post(control::cancel_run))
        .route("/v1/runs/{run_id}/events", get(stream::run_events))
        .layer(json_limit)
        .merge(
            Router::new()
                .route(
                    "/v1/plugins",
                    post(plugins::upload_plugin).get(plugins::list_plugins),
                )
                .route(
                    "/v1/plugins/{name}",
                    get(plugins::get_plugin).delete(plugins::delete_plugin),
                )
                .layer(plugin_limit),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::track_http,
        ))
}

async fn not_found() -> ApiError {
    ApiError::not_found("not_found", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
