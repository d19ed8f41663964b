//! Plugin routes (CONTRACT §3): upload a component as a new version, list, inspect, delete.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use pipecat_sandbox::LoadError;
use pipecat_store::PluginVersion;
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::auth::AccountAuth;
use crate::error::{ApiError, ApiJson, ApiQuery, ApiResult};
use crate::limits::rfc3339;
use crate::routes::PathParam;
use crate::state::AppState;

/// Query of an upload.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct UploadQuery {
    /// The plugin name (`[a-z0-9_-]`, 1 to 64 characters); tools are referenced as `<name>.<tool>`.
    pub name: Option<String>,
}

/// Whether `name` is a valid plugin name.
pub fn valid_plugin_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// `404 plugin_not_found`, also for a name no plugin can have (`a\0b`, `../x`, `%FF`): such a name never
/// reaches the store, which refuses some of them (NUL) as invalid input.
fn plugin_not_found() -> ApiError {
    ApiError::not_found("plugin_not_found", "plugin not found")
}

fn version_view(v: &PluginVersion) -> Value {
    json!({
        "id": v.id,
        "name": v.name,
        "version": v.version,
        "size": v.size,
        "tools": v.tools,
        "created_at": rfc3339(v.created_at),
    })
}

/// Maps a load failure to its API error (`422` with a stable code, `413` for size).
pub fn load_error(err: &LoadError) -> ApiError {
    let code = match err {
        LoadError::TooLarge { .. } => return ApiError::PayloadTooLarge,
        LoadError::Internal(msg) => {
            return ApiError::internal(anyhow::anyhow!("plugin load: {msg}"));
        }
        LoadError::NotWasm(_) | LoadError::CoreModule => "not_a_component",
        LoadError::WrongWorld(_) | LoadError::UnknownImport(_) => "wrong_world",
        LoadError::CompileTimeout(_) => "compile_timeout",
        LoadError::Invalid(_) | LoadError::ListTools(_) | LoadError::InvalidTools(_) => {
            "invalid_plugin"
        }
    };
    ApiError::InvalidPlugin {
        code: code.to_string(),
        message: format!("{err} ({})", err.code()),
    }
}

/// Uploads a component (`Content-Type: application/wasm`) as the next version of `name`.
#[utoipa::path(post, path = "/v1/plugins", tag = "plugins", params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/wasm"),
    responses((status = 201, description = "`{id, name, size, tools}`"), (status = 413, description = "Too large"),
        (status = 415, description = "Not application/wasm"), (status = 422, description = "Not a usable plugin")))]
pub async fn upload_plugin(
    auth: AccountAuth,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<impl IntoResponse> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .trim()
        .to_ascii_lowercase()
        .starts_with("application/wasm")
    {
        return Err(ApiError::UnsupportedMediaType {
            expected: "application/wasm",
        });
    }
    let name = query.name.unwrap_or_default();
    if !valid_plugin_name(&name) {
        return Err(ApiError::bad_request(
            "invalid_plugin_name",
            "`?name=` is required: 1 to 64 characters of a-z, 0-9, `_` and `-`",
        ));
    }
    let bytes = body?;
    let plugin = state
        .runtime
        .sandbox
        .load(&bytes)
        .await
        .map_err(|e| load_error(&e))?;
    let tools = crate::runtime::tools_json(&plugin);
    let version = state
        .store
        .add_plugin_version(
            auth.account_id(),
            &name,
            &bytes,
            tools,
            OffsetDateTime::now_utc(),
        )
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(plugin = %name, version = version.version, id = %version.id, "plugin uploaded");
    Ok((StatusCode::CREATED, ApiJson(version_view(&version))))
}

/// Lists the account's plugins: each name with its latest version and version count.
#[utoipa::path(get, path = "/v1/plugins", tag = "plugins", responses((status = 200, description = "`{\"plugins\": [...]}`")))]
pub async fn list_plugins(
    auth: AccountAuth,
    State(state): State<AppState>,
) -> ApiResult<ApiJson<Value>> {
    let versions = state
        .store
        .list_plugins(auth.account_id())
        .await
        .map_err(ApiError::internal)?;
    let mut plugins: Vec<Value> = Vec::new();
    let mut i = 0;
    while i < versions.len() {
        let name = &versions[i].name;
        let mut j = i;
        while j + 1 < versions.len() && versions[j + 1].name == *name {
            j += 1;
        }
        let mut view = version_view(&versions[j]);
        view["versions"] = json!(j - i + 1);
        plugins.push(view);
        i = j + 1;
    }
    Ok(ApiJson(json!({ "plugins": plugins })))
}

/// One plugin: its latest version's tools and every version.
#[utoipa::path(get, path = "/v1/plugins/{name}", tag = "plugins",
    responses((status = 200, description = "The plugin"), (status = 404, description = "plugin_not_found")))]
pub async fn get_plugin(
    auth: AccountAuth,
    State(state): State<AppState>,
    PathParam(name): PathParam,
) -> ApiResult<ApiJson<Value>> {
    if !valid_plugin_name(&name) {
        return Err(plugin_not_found());
    }
    let versions = state
        .store
        .list_plugin_versions(auth.account_id(), &name)
        .await
        .map_err(ApiError::internal)?;
    let latest = versions.last().ok_or_else(plugin_not_found)?;
    Ok(ApiJson(json!({
        "name": latest.name,
        "id": latest.id,
        "version": latest.version,
        "size": latest.size,
        "tools": latest.tools,
        "versions": versions.iter().map(version_view).collect::<Vec<_>>(),
    })))
}

/// Deletes every version of a plugin (published workflow versions keep the bytes they pinned).
#[utoipa::path(delete, path = "/v1/plugins/{name}", tag = "plugins",
    responses((status = 204, description = "Deleted"), (status = 404, description = "plugin_not_found")))]
pub async fn delete_plugin(
    auth: AccountAuth,
    State(state): State<AppState>,
    PathParam(name): PathParam,
) -> ApiResult<StatusCode> {
    if !valid_plugin_name(&name) {
        return Err(plugin_not_found());
    }
    let deleted = state
        .store
        .delete_plugin(auth.account_id(), &name)
        .await
        .map_err(ApiError::internal)?;
    if deleted == 0 {
        return Err(plugin_not_found());
    }
    Ok(StatusCode::NO_CONTENT)
}
