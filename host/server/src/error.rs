//! [`ApiError`]: every request-level failure, its status and its stable `code`.
//!
//! Bodies are always `{"error": {"code", "message", ...}}`. Internal errors are logged inside the request's
//! span and answered with a generic message: their details never reach the wire.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// One problem of an invalid document (`422 invalid_workflow` details).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// JSON pointer-like path of the offending part (`nodes[1].tools[0]`).
    pub path: String,
    /// Stable machine-readable code.
    pub code: String,
    /// What is wrong, for people.
    pub message: String,
}

/// A request-level error. Run-level failures are not errors: they answer `200` with `status: "error"`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// `400 invalid_json`: the body is not JSON (or not the expected shape).
    #[error("{0}")]
    InvalidJson(String),
    /// `400 missing_input`: an invoke body without `input`.
    #[error("the body has no `input` field")]
    MissingInput,
    /// `400` with a specific code (e.g. `invalid_request`, `invalid_cursor`).
    #[error("{message}")]
    BadRequest {
        /// Stable code.
        code: &'static str,
        /// Explanation.
        message: String,
    },
    /// `401 unauthorized`: missing, malformed, unknown or revoked key — always the same body.
    #[error("missing or invalid API key")]
    Unauthorized,
    /// `404` with a specific code (`workflow_not_found`, `run_not_found`, …).
    #[error("{message}")]
    NotFound {
        /// Stable code.
        code: &'static str,
        /// Explanation.
        message: String,
    },
    /// `409` with a specific code.
    #[error("{message}")]
    Conflict {
        /// Stable code.
        code: &'static str,
        /// Explanation.
        message: String,
    },
    /// `422` with a specific code (e.g. `idempotency_key_reused`).
    #[error("{message}")]
    Unprocessable {
        /// Stable code.
        code: &'static str,
        /// Explanation.
        message: String,
    },
    /// `405 method_not_allowed`.
    #[error("this route does not take that method")]
    MethodNotAllowed,
    /// `413 payload_too_large`.
    #[error("the body is larger than the configured limit")]
    PayloadTooLarge,
    /// `415 unsupported_media_type`.
    #[error("expected Content-Type {expected}")]
    UnsupportedMediaType {
        /// The expected media type.
        expected: &'static str,
    },
    /// `422 invalid_workflow` with every problem.
    #[error("the workflow is invalid ({} problems)", .0.len())]
    InvalidWorkflow(Vec<Problem>),
    /// `422` for an upload that is not a usable plugin (`invalid_plugin`, `not_a_component`, `wrong_world`, …).
    #[error("{message}")]
    InvalidPlugin {
        /// Stable code from the sandbox.
        code: String,
        /// Explanation.
        message: String,
    },
    /// `429 run_limit_exceeded`: the account used its monthly runs.
    #[error("the account has used its {limit} runs of this month")]
    RunLimitExceeded {
        /// Monthly limit.
        limit: u64,
        /// Runs used this month.
        used: u64,
        /// RFC 3339 start of next month (UTC).
        resets_at: String,
        /// Seconds until then.
        retry_after_secs: u64,
    },
    /// `429 rate_limited`: the key's request rate is over its limit.
    #[error("too many requests for this API key")]
    RateLimited {
        /// Seconds until a token is available.
        retry_after_secs: u64,
    },
    /// `503 overloaded`: at the concurrency limit.
    #[error("the server is at its concurrency limit; retry shortly")]
    Overloaded,
    /// `503 overloaded` (`"scope": "account"`): the account is at its own concurrency limit.
    #[error(
        "this account already has {limit} runs executing (its concurrency limit); retry shortly"
    )]
    AccountOverloaded {
        /// Runs the account may have executing at once.
        limit: usize,
    },
    /// `503 shutting_down`.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// `507 storage_full`: the disk holding the store is full; nothing of the request was recorded.
    #[error("the server's storage is full: nothing was recorded; retry later")]
    StorageFull,
    /// `503 storage_unavailable` + `Retry-After`: the store's disk writes are stuck (past the store's stall
    /// limit); what the request wrote may or may not be recorded. `/readyz` fails meanwhile.
    #[error(
        "the server's storage is not answering: the request may not have been recorded; retry later"
    )]
    StorageUnavailable,
    /// `500 internal_error`: details go to the log only.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// A `404` with `code` and `message`.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::NotFound {
            code,
            message: message.into(),
        }
    }

    /// `404 workflow_not_found`.
    pub fn workflow_not_found() -> Self {
        Self::not_found("workflow_not_found", "workflow not found")
    }

    /// A `400` with `code` and `message`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// A failure of the server's own (`500 internal_error`; logged, not shown), or `507 storage_full`
    /// when the store's disk is full, or `503 storage_unavailable` when its disk writes are stalled,
    /// wherever in the error's chain that was said.
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        let err = err.into();
        let storage = err
            .chain()
            .filter_map(|cause| cause.downcast_ref::<pipecat_store::StoreError>())
            .find_map(Self::storage_failure);
        match storage {
            Some(failure) => {
                tracing::error!(error = ?err, "{failure}");
                failure
            }
            None => Self::Internal(err),
        }
    }

    /// `507 storage_full` for a full disk, `503 storage_unavailable` for stalled disk writes; `None` for any
    /// other store error.
    pub fn storage_failure(err: &pipecat_store::StoreError) -> Option<Self> {
        if err.is_disk_full() {
            Some(Self::StorageFull)
        } else if err.is_stalled() {
            Some(Self::StorageUnavailable)
        } else {
            None
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidJson(_) | Self::MissingInput | Self::BadRequest { .. } => {
                StatusCode::BAD_REQUEST
            }
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::InvalidWorkflow(_) | Self::InvalidPlugin { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::RunLimitExceeded { .. } | Self::RateLimited { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::Overloaded
            | Self::AccountOverloaded { .. }
            | Self::ShuttingDown
            | Self::StorageUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::StorageFull => StatusCode::INSUFFICIENT_STORAGE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &str {
        match self {
            Self::InvalidJson(_) => "invalid_json",
            Self::MissingInput => "missing_input",
            Self::BadRequest { code, .. }
            | Self::NotFound { code, .. }
            | Self::Conflict { code, .. }
            | Self::Unprocessable { code, .. } => code,
            Self::Unauthorized => "unauthorized",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType { .. } => "unsupported_media_type",
            Self::InvalidWorkflow(_) => "invalid_workflow",
            Self::InvalidPlugin { code, .. } => code,
            Self::RunLimitExceeded { .. } => "run_limit_exceeded",
            Self::RateLimited { .. } => "rate_limited",
            Self::Overloaded | Self::AccountOverloaded { .. } => "overloaded",
            Self::ShuttingDown => "shutting_down",
            Self::StorageFull => "storage_full",
            Self::StorageUnavailable => "storage_unavailable",
            Self::Internal(_) => "internal_error",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let Self::Internal(err) = &self {
            tracing::error!(error = ?err, "internal error");
        }
        let mut error = json!({"code": self.code(), "message": self.to_string()});
        let mut headers = HeaderMap::new();
        match &self {
            Self::InvalidWorkflow(details) => {
                error["details"] = serde_json::to_value(details).unwrap_or(Value::Null);
            }
            Self::RunLimitExceeded {
                limit,
                used,
                resets_at,
                retry_after_secs,
            } => {
                error["limit"] = json!(limit);
                error["used"] = json!(used);
                error["resets_at"] = json!(resets_at);
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
                headers.insert("ratelimit-limit", HeaderValue::from(*limit));
                headers.insert("ratelimit-remaining", HeaderValue::from(0u64));
                headers.insert("ratelimit-reset", HeaderValue::from(*retry_after_secs));
            }
            Self::RateLimited { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            Self::Overloaded | Self::ShuttingDown => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(1u64));
            }
            Self::StorageUnavailable => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(STORAGE_RETRY_AFTER_SECS),
                );
            }
            Self::AccountOverloaded { limit } => {
                error["scope"] = json!("account");
                error["limit"] = json!(limit);
                headers.insert(header::RETRY_AFTER, HeaderValue::from(1u64));
            }
            _ => {}
        }
        (status, headers, Json(json!({ "error": error }))).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => Self::UnsupportedMediaType {
                expected: "application/json",
            },
            JsonRejection::JsonSyntaxError(e) => Self::InvalidJson(e.body_text()),
            JsonRejection::JsonDataError(e) => Self::bad_request("invalid_request", e.body_text()),
            JsonRejection::BytesRejection(e) => Self::from(e),
            other => Self::InvalidJson(other.body_text()),
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::PayloadTooLarge
        } else {
            Self::bad_request("invalid_body", rejection.body_text())
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::bad_request("invalid_query", rejection.body_text())
    }
}

/// A JSON body extractor whose rejections are [`ApiError`]s: `415 unsupported_media_type` unless the
/// content type is JSON, `413 payload_too_large` over the route's body limit, `400 nesting_too_deep` past
/// [`MAX_JSON_DEPTH`], `400 invalid_json` for bad syntax and `400 invalid_request` for the wrong shape.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json_content_type(req.headers()) {
            return Err(ApiError::UnsupportedMediaType {
                expected: "application/json",
            });
        }
        let bytes = Bytes::from_request(req, state).await?;
        if nests_deeper_than(&bytes, MAX_JSON_DEPTH) {
            return Err(nesting_too_deep());
        }
        let Json(value) = Json::<T>::from_bytes(&bytes)?;
        Ok(ApiJson(value))
    }
}

/// A query-string extractor whose rejection is `400 invalid_query` (a JSON body like every other error).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let Query(value) = Query::<T>::try_from_uri(&parts.uri)?;
        Ok(ApiQuery(value))
    }
}

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

/// Shorthand for handler results.
pub type ApiResult<T> = Result<T, ApiError>;

/// `Retry-After` of `503 storage_unavailable`: a stuck disk does not come back within a second, and the
/// store's default stall limit is 30 s.
pub const STORAGE_RETRY_AFTER_SECS: u64 = 30;

/// Deepest nesting of arrays and objects a JSON body may have. Records keep a body inside a few more
/// levels of their own, and the store's JSON decoder (like any serde_json reader) stops at 128: a body
/// nested near that limit would be accepted once and then never be readable again.
pub const MAX_JSON_DEPTH: usize = 64;

/// The `400 nesting_too_deep` answer.
pub fn nesting_too_deep() -> ApiError {
    ApiError::bad_request(
        "nesting_too_deep",
        format!("the JSON nests arrays and objects more than {MAX_JSON_DEPTH} levels deep"),
    )
}

/// Whether JSON text (valid or not) opens more than `max` arrays and objects at once. A single pass over
/// the bytes that skips strings, so it costs nothing next to parsing and never recurses.
pub fn nests_deeper_than(bytes: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// The nesting depth of a JSON value (a scalar is 0), without recursion.
pub fn value_depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((v, depth)) = stack.pop() {
        match v {
            Value::Array(items) => {
                deepest = deepest.max(depth + 1);
                stack.extend(items.iter().map(|x| (x, depth + 1)));
            }
            Value::Object(map) => {
                deepest = deepest.max(depth + 1);
                stack.extend(map.values().map(|x| (x, depth + 1)));
            }
            _ => {}
        }
    }
    deepest
}

/// Whether the request's `Content-Type` is JSON (`application/json` or `application/*+json`).
pub fn is_json_content_type(headers: &HeaderMap) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
    use pipecat_store::StoreError;

    #[test]
    fn store_errors_in_a_chain_map_to_their_codes() {
        let stalled = anyhow::Error::from(StoreError::Stalled {
            what: "group-commit flush",
            secs: 31,
        })
        .context("recording the run");
        let err = ApiError::internal(stalled);
        assert_eq!(
            (err.status(), err.code()),
            (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable")
        );
        let response = err.into_response();
        assert_eq!(
            response.headers().get(header::RETRY_AFTER),
            Some(&HeaderValue::from(STORAGE_RETRY_AFTER_SECS))
        );

        let full = ApiError::internal(StoreError::DiskFull {
            context: "x".into(),
        });
        assert_eq!(full.code(), "storage_full");
        let other = ApiError::internal(StoreError::Closed);
        assert_eq!(other.code(), "internal_error");

        // What a streamed run's final error event says when its record could not be stored.
        let code = |e: &StoreError| ApiError::storage_failure(e).map(|f| f.code().to_owned());
        let stalled = StoreError::Stalled {
            what: "run-log write",
            secs: 30,
        };
        assert_eq!(code(&stalled).as_deref(), Some("storage_unavailable"));
        let full = StoreError::DiskFull {
            context: "recording a run".into(),
        };
        assert_eq!(code(&full).as_deref(), Some("storage_full"));
        assert_eq!(code(&StoreError::Closed), None);
    }
}
