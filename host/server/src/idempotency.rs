//! `Idempotency-Key` on invoke: a retried request returns the first run's response instead of running again.
//!
//! The key (1 to 255 visible ASCII characters) is scoped to the account and kept 24 hours. The first request
//! claims it atomically in the store (a compare-and-swap: of concurrent first uses exactly one runs) with a
//! fingerprint of the workflow id and the body. Later requests with that key get:
//! - the first response again (same status and body, header `Idempotent-Replayed: true`) once it is known;
//! - `409 idempotency_in_progress` while the first is still running;
//! - `422 idempotency_key_reused` when their workflow or body differs.
//!
//! A request refused before it ran (any `4xx`/`503`) releases its key, so the retry can run. An async run's
//! response is its `202`; a streamed run's is its final REST body (an SSE retry replays the stored events).

use axum::http::HeaderMap;
use pipecat_store::IdempotencyEntry;
use serde_json::Value;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// The response header marking a replay.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// How long keys are kept.
pub const TTL: Duration = Duration::hours(24);

/// A key this request claimed.
#[derive(Debug, Clone)]
pub struct Claim {
    key: String,
    entry: IdempotencyEntry,
}

/// What to do with a request carrying (or not) an `Idempotency-Key`.
#[derive(Debug)]
pub enum Begin {
    /// No key: just run.
    None,
    /// The key is ours: run, then [`Claim::complete`] (or [`Claim::release`] when refused).
    Claimed(Claim),
    /// A previous request with this key finished: answer with its response.
    Replay(IdempotencyEntry),
}

impl Begin {
    /// The claim, if any.
    pub fn claim(&self) -> Option<Claim> {
        match self {
            Begin::Claimed(c) => Some(c.clone()),
            _ => None,
        }
    }

    /// Releases a claim (the request was refused before it ran).
    pub async fn release(&self, state: &AppState, account_id: Uuid) {
        if let Begin::Claimed(c) = self {
            c.release(state, account_id).await;
        }
    }
}

fn fingerprint(workflow_id: &str, body: &[u8]) -> String {
    let mut h = blake3::Hasher::new();
    h.update(workflow_id.as_bytes());
    h.update(b"\n");
    h.update(body);
    h.finalize().to_hex().to_string()
}

/// Reads the header and claims the key, or finds the earlier request's outcome.
pub async fn begin(
    state: &AppState,
    account_id: Uuid,
    headers: &HeaderMap,
    workflow_id: &str,
    body: &[u8],
) -> ApiResult<Begin> {
    let Some(raw) = headers.get(HEADER) else {
        return Ok(Begin::None);
    };
    let key = raw
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_idempotency_key",
                "`Idempotency-Key` must be 1 to 255 visible ASCII characters",
            )
        })?
        .to_string();
    let now = OffsetDateTime::now_utc();
    let entry = IdempotencyEntry {
        fingerprint: fingerprint(workflow_id, body),
        created_at: now,
        run_id: None,
        status: None,
        body: None,
    };
    let existing = state
        .store
        .claim_idempotency_key(account_id, &key, &entry, now - TTL)
        .await
        .map_err(ApiError::internal)?;
    let Some(existing) = existing else {
        return Ok(Begin::Claimed(Claim { key, entry }));
    };
    if existing.fingerprint != entry.fingerprint {
        return Err(ApiError::Unprocessable {
            code: "idempotency_key_reused",
            message: "this Idempotency-Key was used with a different request (workflow or body); use a new key"
                .into(),
        });
    }
    if existing.status.is_none() {
        return Err(ApiError::Conflict {
            code: "idempotency_in_progress",
            message:
                "a request with this Idempotency-Key is still running; retry once it has finished"
                    .into(),
        });
    }
    Ok(Begin::Replay(existing))
}

impl Claim {
    /// Records the response of the run this claim started.
    pub async fn complete(
        &self,
        state: &AppState,
        account_id: Uuid,
        status: u16,
        run_id: Option<Uuid>,
        body: &Value,
    ) {
        let entry = IdempotencyEntry {
            run_id,
            status: Some(status),
            body: Some(body.clone()),
            ..self.entry.clone()
        };
        if let Err(e) = state
            .store
            .put_idempotency_key(account_id, &self.key, &entry)
            .await
        {
            tracing::error!(error = %e, "recording an idempotent response");
        }
    }

    /// Forgets the key.
    pub async fn release(&self, state: &AppState, account_id: Uuid) {
        if let Err(e) = state
            .store
            .delete_idempotency_key(account_id, &self.key)
            .await
        {
            tracing::error!(error = %e, "releasing an idempotency key");
        }
    }
}

/// Deletes expired keys once an hour until shutdown.
pub fn spawn_purger(state: AppState) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = state.shutdown.cancelled() => return,
            }
            match state
                .store
                .purge_idempotency_keys(OffsetDateTime::now_utc() - TTL)
                .await
            {
                Ok(n) if n > 0 => tracing::info!(removed = n, "expired idempotency keys purged"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "purging idempotency keys"),
            }
        }
    });
}
