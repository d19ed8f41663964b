//! Authentication extractors: [`AccountAuth`] for account routes, [`AdminAuth`] for admin routes.
//!
//! Missing, malformed, unknown and revoked keys, and a request with several `X-API-Key` headers, all get
//! the same `401` body. The admin key works on admin routes only; account keys never do.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use pipecat_store::{Account, KeyHash};
use uuid::Uuid;

use crate::error::ApiError;
use crate::keys;
use crate::state::AppState;

/// The header carrying the key.
pub const API_KEY_HEADER: &str = "x-api-key";

/// An authenticated account key (rate limit already applied).
#[derive(Debug, Clone)]
pub struct AccountAuth {
    /// The account the key belongs to.
    pub account: Account,
    /// The key's id.
    pub key_id: Uuid,
    /// The key's hash, to check it again later (a WebSocket connection does, before each message).
    pub key_hash: KeyHash,
}

impl AccountAuth {
    /// The account id.
    pub fn account_id(&self) -> Uuid {
        self.account.id
    }
}

/// The key a request presents in `X-API-Key`, or `None`: no header, a value that is not visible ASCII, or
/// the header more than once (ambiguous: the server never picks one of several keys). The key is only
/// ever read from this header: query strings, cookies and `Authorization` are ignored.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers.get_all(API_KEY_HEADER).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    first.to_str().ok().map(str::trim)
}

/// Resolves an account key, or `None` for any kind of bad key.
pub async fn account_for_key(state: &AppState, key: &str) -> Result<Option<AccountAuth>, ApiError> {
    if !keys::is_well_formed_live(key) {
        return Ok(None);
    }
    account_for_hash(state, KeyHash::of(key)).await
}

/// Resolves the key with this hash, or `None` if it is unknown or revoked (or its account is gone). A
/// lookup served by the store's cache: cheap enough to repeat per message.
pub async fn account_for_hash(
    state: &AppState,
    hash: KeyHash,
) -> Result<Option<AccountAuth>, ApiError> {
    let Some(api_key) = state
        .store
        .api_key_by_hash(&hash)
        .await
        .map_err(ApiError::internal)?
    else {
        return Ok(None);
    };
    if api_key.revoked_at.is_some() {
        return Ok(None);
    }
    let Some(account) = state
        .store
        .get_account(api_key.account_id)
        .await
        .map_err(ApiError::internal)?
    else {
        return Ok(None);
    };
    Ok(Some(AccountAuth {
        account,
        key_id: api_key.id,
        key_hash: hash,
    }))
}

/// Counts one request against the key's rate (`[limits] rate_per_key_per_second`): `429 rate_limited`
/// past it.
pub fn check_rate(state: &AppState, auth: &AccountAuth) -> Result<(), ApiError> {
    state
        .rate
        .check(&auth.key_id.to_string())
        .map_err(|wait| ApiError::RateLimited {
            retry_after_secs: wait.as_secs().max(1),
        })
}

impl FromRequestParts<AppState> for AccountAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = presented_key(&parts.headers).ok_or(ApiError::Unauthorized)?;
        let auth = account_for_key(state, key)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        check_rate(state, &auth)?;
        tracing::Span::current().record("account_id", tracing::field::display(auth.account.id));
        Ok(auth)
    }
}

/// The operator, authenticated by the admin key.
#[derive(Debug, Clone, Copy)]
pub struct AdminAuth;

/// Whether `key` is the admin key.
pub fn is_admin_key(state: &AppState, key: &str) -> bool {
    !key.is_empty() && KeyHash::of(key) == state.admin_hash
}

impl FromRequestParts<AppState> for AdminAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match presented_key(&parts.headers) {
            Some(key) if is_admin_key(state, key) => Ok(AdminAuth),
            _ => Err(ApiError::Unauthorized),
        }
    }
}

/// Either the admin or an account key (e.g. revoking a key).
#[derive(Debug, Clone)]
pub enum AnyAuth {
    /// The admin key.
    Admin,
    /// An account key.
    Account(AccountAuth),
}

impl FromRequestParts<AppState> for AnyAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = presented_key(&parts.headers).ok_or(ApiError::Unauthorized)?;
        if is_admin_key(state, key) {
            return Ok(AnyAuth::Admin);
        }
        AccountAuth::from_request_parts(parts, state)
            .await
            .map(AnyAuth::Account)
    }
}
