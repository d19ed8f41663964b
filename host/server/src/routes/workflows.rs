//! Workflow routes (CONTRACT §4): drafts, publishing immutable versions, listing versions.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use pipecat_store::{Workflow, WorkflowVersion};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::auth::AccountAuth;
use crate::error::{ApiError, ApiJson, ApiResult, Problem};
use crate::limits::rfc3339;
use crate::routes::{PathParam, parse_id};
use crate::state::AppState;

/// The JSON view of a workflow.
pub fn workflow_view(w: &Workflow) -> Value {
    json!({
        "id": w.id,
        "name": w.name,
        "draft": w.draft,
        "published_version": w.published_version,
        "created_at": rfc3339(w.created_at),
        "updated_at": rfc3339(w.updated_at),
    })
}

fn version_view(v: &WorkflowVersion) -> Value {
    json!({
        "workflow_id": v.workflow_id,
        "version": v.version,
        "published_at": rfc3339(v.published_at),
        "pins": v.pins,
        "document": v.document,
    })
}

/// The name of a draft document (`name`, else `untitled`); the document must be a JSON object.
fn draft_name(doc: &Value) -> ApiResult<String> {
    let Some(obj) = doc.as_object() else {
        return Err(ApiError::bad_request(
            "invalid_request",
            "the workflow document must be a JSON object",
        ));
    };
    match obj.get("name") {
        None | Some(Value::Null) => Ok("untitled".to_string()),
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 200 => Ok(s.clone()),
        Some(_) => Err(ApiError::bad_request(
            "invalid_request",
            "`name` must be a string of 1 to 200 characters",
        )),
    }
}

/// The account's workflow with this path id; malformed, missing and foreign ids are all
/// `404 workflow_not_found`.
pub(crate) async fn load(state: &AppState, auth: &AccountAuth, id: &str) -> ApiResult<Workflow> {
    let id = parse_id(id, "workflow_not_found")?;
    state
        .store
        .get_workflow(auth.account_id(), id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(ApiError::workflow_not_found)
}

/// Creates a workflow from a document (kept as the draft; validated at publish).
#[utoipa::path(post, path = "/v1/workflows", tag = "workflows", request_body = Object,
    responses((status = 201, description = "`{id, name, draft, published_version, created_at, updated_at}`")))]
pub async fn create_workflow(
    auth: AccountAuth,
    State(state): State<AppState>,
    ApiJson(doc): ApiJson<Value>,
) -> ApiResult<impl IntoResponse> {
    let name = draft_name(&doc)?;
    let now = OffsetDateTime::now_utc();
    let workflow = Workflow {
        id: Uuid::now_v7(),
        account_id: auth.account_id(),
        name,
        draft: doc,
        published_version: None,
        created_at: now,
        updated_at: now,
    };
    state
        .store
        .create_workflow(&workflow)
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(workflow_id = %workflow.id, "workflow created");
    Ok((StatusCode::CREATED, ApiJson(workflow_view(&workflow))))
}

/// Lists the account's workflows.
#[utoipa::path(get, path = "/v1/workflows", tag = "workflows", responses((status = 200, description = "`{\"workflows\": [...]}`")))]
pub async fn list_workflows(
    auth: AccountAuth,
    State(state): State<AppState>,
) -> ApiResult<ApiJson<Value>> {
    let list = state
        .store
        .list_workflows(auth.account_id())
        .await
        .map_err(ApiError::internal)?;
    Ok(ApiJson(
        json!({ "workflows": list.iter().map(workflow_view).collect::<Vec<_>>() }),
    ))
}

/// One workflow.
#[utoipa::path(get, path = "/v1/workflows/{id}", tag = "workflows",
    responses((status = 200, description = "The workflow"), (status = 404, description = "workflow_not_found")))]
pub async fn get_workflow(
    auth: AccountAuth,
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> ApiResult<ApiJson<Value>> {
    Ok(ApiJson(workflow_view(&load(&state, &auth, &id).await?)))
}

/// Replaces the draft (published versions do not change).
#[utoipa::path(put, path = "/v1/workflows/{id}", tag = "workflows", request_body = Object,
    responses((status = 200, description = "The workflow"), (status = 404, description = "workflow_not_found")))]
pub async fn replace_workflow(
    auth: AccountAuth,
    State(state): State<AppState>,
    PathParam(id): PathParam,
    ApiJson(doc): ApiJson<Value>,
) -> ApiResult<ApiJson<Value>> {
    let id = parse_id(&id, "workflow_not_found")?;
    let name = draft_name(&doc)?;
    let workflow = state
        .store
        .update_workflow_draft(auth.account_id(), id, &name, doc, OffsetDateTime::now_utc())
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(ApiError::workflow_not_found)?;
    Ok(ApiJson(workflow_view(&workflow)))
}

/// Deletes a workflow and its versions (its runs stay in the history).
#[utoipa::path(delete, path = "/v1/workflows/{id}", tag = "workflows",
    responses((status = 204, description = "Deleted"), (status = 404, description = "workflow_not_found")))]
pub async fn delete_workflow(
    auth: AccountAuth,
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> ApiResult<StatusCode> {
    let id = parse_id(&id, "workflow_not_found")?;
    if !state
        .store
        .delete_workflow(auth.account_id(), id)
        .await
        .map_err(ApiError::internal)?
    {
        return Err(ApiError::workflow_not_found());
    }
    state.runtime.forget_workflow(id);
    Ok(StatusCode::NO_CONTENT)
}

/// Validates the draft, pins each plugin to its latest version and freezes the next version.
#[utoipa::path(post, path = "/v1/workflows/{id}/publish", tag = "workflows",
    responses((status = 200, description = "`{workflow_id, version, published_at}`"),
        (status = 404, description = "workflow_not_found"), (status = 422, description = "invalid_workflow with details")))]
pub async fn publish_workflow(
    auth: AccountAuth,
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> ApiResult<ApiJson<Value>> {
    let workflow = load(&state, &auth, &id).await?;
    let pins = state
        .runtime
        .check_publish(&state, auth.account_id(), &workflow.draft)
        .await
        .map_err(|problems| match problems {
            crate::runtime::PublishError::Invalid(problems) => ApiError::InvalidWorkflow(
                problems
                    .into_iter()
                    .map(|p| Problem {
                        path: p.path,
                        code: p.code,
                        message: p.message,
                    })
                    .collect(),
            ),
            crate::runtime::PublishError::Internal(e) => ApiError::Internal(e),
        })?;
    let version = state
        .store
        .publish_workflow(
            auth.account_id(),
            workflow.id,
            workflow.draft,
            pins,
            OffsetDateTime::now_utc(),
        )
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(ApiError::workflow_not_found)?;
    tracing::info!(workflow_id = %workflow.id, version = version.version, "workflow published");
    Ok(ApiJson(json!({
        "workflow_id": version.workflow_id,
        "version": version.version,
        "published_at": rfc3339(version.published_at),
        "pins": version.pins,
    })))
}

/// The published versions, oldest first.
#[utoipa::path(get, path = "/v1/workflows/{id}/versions", tag = "workflows",
    responses((status = 200, description = "`{\"versions\": [...]}`"), (status = 404, description = "workflow_not_found")))]
pub async fn list_versions(
    auth: AccountAuth,
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> ApiResult<ApiJson<Value>> {
    let workflow = load(&state, &auth, &id).await?;
    let versions = state
        .store
        .list_workflow_versions(auth.account_id(), workflow.id)
        .await
        .map_err(ApiError::internal)?;
    Ok(ApiJson(
        json!({ "versions": versions.iter().map(version_view).collect::<Vec<_>>() }),
    ))
}
