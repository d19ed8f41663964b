//! Admin routes: accounts, plans and API keys (CONTRACT §2).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use pipecat_store::{Account, ApiKey, KeyHash};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::auth::{AdminAuth, AnyAuth};
use crate::error::{ApiError, ApiJson, ApiResult};
use crate::limits::{month_key, rfc3339};
use crate::routes::{PathParam, parse_id};
use crate::{keys, state::AppState};

/// `POST /v1/accounts` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    /// A human name.
    pub name: String,
    /// A plan named in the configuration (default `free`).
    #[serde(default)]
    pub plan: Option<String>,
    /// Overrides the plan's monthly run limit.
    #[serde(default)]
    pub monthly_run_limit: Option<u64>,
}

/// `PATCH /v1/accounts/{id}` body: absent fields stay, `"monthly_run_limit": null` removes the override.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchAccount {
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New plan.
    #[serde(default)]
    pub plan: Option<String>,
    /// New override (`null` clears it).
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<u64>)]
    pub monthly_run_limit: Option<Option<u64>>,
}

mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<u64>>, D::Error> {
        Option::<u64>::deserialize(d).map(Some)
    }
}

/// `POST /v1/accounts/{id}/keys` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// A human name for the key (`"ci"`).
    #[serde(default)]
    pub name: Option<String>,
}

/// The JSON view of an account; `monthly_run_limit` is the effective limit (`null`: unlimited).
pub async fn account_view(state: &AppState, account: &Account) -> ApiResult<Value> {
    let used = state
        .store
        .runs_used(account.id, &month_key(OffsetDateTime::now_utc()))
        .await
        .map_err(ApiError::internal)?;
    Ok(json!({
        "id": account.id,
        "name": account.name,
        "plan": account.plan,
        "monthly_run_limit": effective_limit(state, account),
        "monthly_run_limit_override": account.monthly_run_limit,
        "runs_this_month": used,
        "created_at": rfc3339(account.created_at),
    }))
}

/// The account's monthly limit: its override, else its plan's (`None`: unlimited).
pub fn effective_limit(state: &AppState, account: &Account) -> Option<u64> {
    account
        .monthly_run_limit
        .or_else(|| state.plan_limit(&account.plan))
}

fn check_plan(state: &AppState, plan: &str) -> ApiResult<()> {
    if state.plans.contains_key(plan) {
        Ok(())
    } else {
        let known: Vec<&str> = state.plans.keys().map(String::as_str).collect();
        Err(ApiError::bad_request(
            "unknown_plan",
            format!("unknown plan {plan:?}; known plans: {known:?}"),
        ))
    }
}

fn check_name(name: &str) -> ApiResult<()> {
    if name.trim().is_empty() || name.len() > 200 {
        return Err(ApiError::bad_request(
            "invalid_name",
            "the name must have 1 to 200 characters",
        ));
    }
    Ok(())
}

async fn load_account(state: &AppState, id: &str) -> ApiResult<Account> {
    let id = parse_id(id, "account_not_found")?;
    state
        .store
        .get_account(id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found("account_not_found", "account not found"))
}

/// Creates an account.
#[utoipa::path(post, path = "/v1/accounts", tag = "admin", request_body = CreateAccount,
    responses((status = 201, description = "The account")))]
pub async fn create_account(
    _: AdminAuth,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateAccount>,
) -> ApiResult<impl IntoResponse> {
    check_name(&body.name)?;
    let plan = body.plan.unwrap_or_else(|| "free".to_string());
    check_plan(&state, &plan)?;
    let account = Account {
        id: Uuid::now_v7(),
        name: body.name,
        plan,
        monthly_run_limit: body.monthly_run_limit,
        created_at: OffsetDateTime::now_utc(),
    };
    state
        .store
        .create_account(&account)
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(account_id = %account.id, "account created");
    Ok((
        StatusCode::CREATED,
        ApiJson(account_view(&state, &account).await?),
    ))
}

/// Lists accounts.
#[utoipa::path(get, path = "/v1/accounts", tag = "admin", responses((status = 200, description = "`{\"accounts\": [...]}`")))]
pub async fn list_accounts(
    _: AdminAuth,
    State(state): State<AppState>,
) -> ApiResult<ApiJson<Value>> {
    let accounts = state
        .store
        .list_accounts()
        .await
        .map_err(ApiError::internal)?;
    let mut views = Vec::with_capacity(accounts.len());
    for account in &accounts {
        views.push(account_view(&state, account).await?);
    }
    Ok(ApiJson(json!({ "accounts": views })))
}

/// One account.
#[utoipa::path(get, path = "/v1/accounts/{id}", tag = "admin", responses((status = 200, description = "The account"), (status = 404, description = "No such account")))]
pub async fn get_account(
    _: AdminAuth,
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> ApiResult<ApiJson<Value>> {
    let account = load_account(&state, &id).await?;
    Ok(ApiJson(account_view(&state, &account).await?))
}

/// Changes an account's name, plan or limit override.
#[utoipa::path(patch, path = "/v1/accounts/{id}", tag = "admin", request_body = PatchAccount,
    responses((status = 200, description = "The account")))]
pub async fn patch_account(
    _: AdminAuth,
    State(state): State<AppState>,
    PathParam(id): PathParam,
    ApiJson(body): ApiJson<PatchAccount>,
) -> ApiResult<ApiJson<Value>> {
    let mut account = load_account(&state, &id).await?;
    if let Some(name) = body.name {
        check_name(&name)?;
        account.name = name;
    }
    if let Some(plan) = body.plan {
        check_plan(&state, &plan)?;
        account.plan = plan;
    }
    if let Some(limit) = body.monthly_run_limit {
        account.monthly_run_limit = limit;
    }
    if !state
        .store
        .update_account(&account)
        .await
        .map_err(ApiError::internal)?
    {
        return Err(ApiError::not_found(
            "account_not_found",
            "account not found",
        ));
    }
    Ok(ApiJson(account_view(&state, &account).await?))
}

fn key_view(key: &ApiKey) -> Value {
    json!({
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "account_id": key.account_id,
        "created_at": rfc3339(key.created_at),
        "revoked_at": key.revoked_at.map(rfc3339),
    })
}

/// Creates an API key; the key itself is in this answer only.
#[utoipa::path(post, path = "/v1/accounts/{id}/keys", tag = "admin", request_body = CreateKey,
    responses((status = 201, description = "`{id, key, name, created_at}`")))]
pub async fn create_key(
    _: AdminAuth,
    State(state): State<AppState>,
    PathParam(id): PathParam,
    body: axum::body::Bytes,
) -> ApiResult<impl IntoResponse> {
    let account = load_account(&state, &id).await?;
    let body: CreateKey = if body.iter().all(u8::is_ascii_whitespace) {
        CreateKey { name: None }
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::InvalidJson(e.to_string()))?
    };
    let name = body.name.unwrap_or_else(|| "default".to_string());
    check_name(&name)?;
    let (key, view) = issue_key(&state, account.id, &name).await?;
    let mut view = view;
    view["key"] = json!(key);
    Ok((StatusCode::CREATED, ApiJson(view)))
}

/// Creates and stores a key for an account; returns the secret and the key's view.
pub async fn issue_key(
    state: &AppState,
    account_id: Uuid,
    name: &str,
) -> ApiResult<(String, Value)> {
    let secret = keys::generate_live();
    let record = ApiKey {
        id: Uuid::now_v7(),
        account_id,
        name: name.to_string(),
        prefix: secret[..keys::LIVE_PREFIX.len() + 4].to_string(),
        hash: KeyHash::of(&secret),
        created_at: OffsetDateTime::now_utc(),
        revoked_at: None,
    };
    state
        .store
        .create_api_key(&record)
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(key_id = %record.id, %account_id, "API key created");
    Ok((secret, key_view(&record)))
}

/// Lists an account's keys (never the keys themselves).
#[utoipa::path(get, path = "/v1/accounts/{id}/keys", tag = "admin", responses((status = 200, description = "`{\"keys\": [...]}`")))]
pub async fn list_keys(
    _: AdminAuth,
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> ApiResult<ApiJson<Value>> {
    let account = load_account(&state, &id).await?;
    let keys = state
        .store
        .list_api_keys(account.id)
        .await
        .map_err(ApiError::internal)?;
    Ok(ApiJson(
        json!({ "keys": keys.iter().map(key_view).collect::<Vec<_>>() }),
    ))
}

/// Revokes a key at once (admin key, or a key of the same account).
#[utoipa::path(delete, path = "/v1/keys/{key_id}", tag = "admin", responses((status = 204, description = "Revoked"), (status = 404, description = "No such key")))]
pub async fn revoke_key(
    auth: AnyAuth,
    State(state): State<AppState>,
    PathParam(key_id): PathParam,
) -> ApiResult<StatusCode> {
    let not_found = || ApiError::not_found("key_not_found", "key not found");
    let key_id = parse_id(&key_id, "key_not_found")?;
    let key = state
        .store
        .get_api_key(key_id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(not_found)?;
    if let AnyAuth::Account(auth) = &auth
        && auth.account.id != key.account_id
    {
        return Err(not_found());
    }
    state
        .store
        .revoke_api_key(key_id, OffsetDateTime::now_utc())
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(not_found)?;
    tracing::info!(%key_id, "API key revoked");
    Ok(StatusCode::NO_CONTENT)
}
