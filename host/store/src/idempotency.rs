//! [`IdempotencyEntry`]: what the server remembers about one `Idempotency-Key` of an account.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

/// One idempotency key of an account: the request it was first used with and, once known, the response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdempotencyEntry {
    /// A hash of the first request (workflow and body); a retry must match it.
    pub fingerprint: String,
    /// When the key was first used; the entry expires 24 hours later.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The run the first request started, once it started.
    pub run_id: Option<Uuid>,
    /// The HTTP status of the first response, once it is known (`None`: still in progress).
    pub status: Option<u16>,
    /// The JSON body of the first response.
    pub body: Option<Value>,
}
