//! The records the store holds. All are plain serde types; timestamps serialize as RFC 3339.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

/// A tenant. Every other object belongs to exactly one account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// The account id.
    pub id: Uuid,
    /// A human name (`"acme"`).
    pub name: String,
    /// The plan name (`"free"`, …) as named in the configuration.
    pub plan: String,
    /// Overrides the plan's monthly run limit when set.
    pub monthly_run_limit: Option<u64>,
    /// When the account was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// The blake3 hash of an API key (the key itself is never stored). Serializes as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyHash(pub [u8; 32]);

impl KeyHash {
    /// Hashes a secret key with blake3 (what the server does before every lookup).
    pub fn of(secret: &str) -> Self {
        KeyHash(*blake3::hash(secret.as_bytes()).as_bytes())
    }

    /// Lower-case hex of the hash.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(KeyHash(out))
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyHash({})", self.to_hex())
    }
}

impl Serialize for KeyHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for KeyHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        KeyHash::from_hex(&s).ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
    }
}

/// An API key of an account (only its hash and a display prefix are stored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    /// The key id (used by `DELETE /v1/keys/{key_id}`).
    pub id: Uuid,
    /// The owning account.
    pub account_id: Uuid,
    /// A human name (`"ci"`).
    pub name: String,
    /// The first characters of the key, shown in lists to recognise it.
    pub prefix: String,
    /// blake3 of the whole key.
    pub hash: KeyHash,
    /// When the key was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the key was revoked; a revoked key authenticates nothing.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

/// One uploaded version of an account's plugin. The bytes live once per content hash, shared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginVersion {
    /// The owning account.
    pub account_id: Uuid,
    /// The plugin name (`"weather"`).
    pub name: String,
    /// 1, 2, … per (account, name), assigned by the store.
    pub version: u32,
    /// blake3 hex of the component bytes (the blob's address).
    pub id: String,
    /// Size of the component in bytes.
    pub size: u64,
    /// The tools the component declared (`[{"name","description","parameters"}]`).
    pub tools: Value,
    /// When this version was uploaded.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A workflow: an editable draft plus the number of its latest published version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workflow {
    /// The workflow id.
    pub id: Uuid,
    /// The owning account.
    pub account_id: Uuid,
    /// The workflow name.
    pub name: String,
    /// The current draft document.
    pub draft: Value,
    /// The latest published version, if any (maintained by [`Store::publish_workflow`](crate::Store::publish_workflow)).
    pub published_version: Option<u32>,
    /// When the workflow was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the draft was last replaced.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// An immutable published version of a workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowVersion {
    /// The workflow.
    pub workflow_id: Uuid,
    /// 1, 2, … assigned atomically at publish.
    pub version: u32,
    /// The document as published.
    pub document: Value,
    /// Plugin name → content hash (blake3 hex) each tool reference resolved to.
    pub pins: BTreeMap<String, String>,
    /// When it was published.
    #[serde(with = "time::serde::rfc3339")]
    pub published_at: OffsetDateTime,
}

/// The status of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Still executing (async runs).
    Running,
    /// Finished successfully.
    Success,
    /// Finished with an error.
    Error,
    /// Cancelled.
    Cancelled,
}

impl RunStatus {
    /// The wire name (`"success"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Success => "success",
            RunStatus::Error => "error",
            RunStatus::Cancelled => "cancelled",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => RunStatus::Running,
            "success" => RunStatus::Success,
            "error" => RunStatus::Error,
            "cancelled" => RunStatus::Cancelled,
            _ => return None,
        })
    }

    pub(crate) fn to_byte(self) -> u8 {
        match self {
            RunStatus::Running => 0,
            RunStatus::Success => 1,
            RunStatus::Error => 2,
            RunStatus::Cancelled => 3,
        }
    }

    pub(crate) fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0 => RunStatus::Running,
            1 => RunStatus::Success,
            2 => RunStatus::Error,
            3 => RunStatus::Cancelled,
            _ => return None,
        })
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A recorded run: the indexed fields plus the full record as an opaque JSON value
/// (input, output, error, tool calls, nodes, usage, … as the server/engine define them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The run id: a UUIDv7, so ids sort by start time.
    pub run_id: Uuid,
    /// The owning account.
    pub account_id: Uuid,
    /// The workflow that ran.
    pub workflow_id: Uuid,
    /// The published version that ran.
    pub version: u32,
    /// The run's status.
    pub status: RunStatus,
    /// When the run started.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// The full run record, opaque to the store.
    pub record: Value,
}

/// Paging and filtering of a run listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunQuery {
    /// At most this many runs (0 is treated as 1).
    pub limit: usize,
    /// Continue after this run id (the `next_cursor` of the previous page).
    pub cursor: Option<Uuid>,
    /// Only runs with this status.
    pub status: Option<RunStatus>,
    /// Only runs of this published version.
    pub version: Option<u32>,
    /// Only runs started at or after this time (the time in the UUIDv7 run id).
    pub since: Option<OffsetDateTime>,
    /// Only runs started before this time.
    pub until: Option<OffsetDateTime>,
}

impl Default for RunQuery {
    fn default() -> Self {
        RunQuery {
            limit: 50,
            cursor: None,
            status: None,
            version: None,
            since: None,
            until: None,
        }
    }
}

/// Which run records [`Store::prune_runs`](crate::Store::prune_runs) deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionPolicy {
    /// Delete runs that started before this time.
    pub older_than: Option<OffsetDateTime>,
    /// Keep at most this many runs per workflow (the newest).
    pub max_runs_per_workflow: Option<usize>,
}

/// One workflow's serialized statistics, opaque to the store (the server defines the format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsBlob {
    /// The owning account.
    pub account_id: Uuid,
    /// The workflow.
    pub workflow_id: Uuid,
    /// The serialized statistics.
    pub data: Vec<u8>,
}

/// One page of runs, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct RunPage {
    /// The runs, newest first.
    pub runs: Vec<RunRecord>,
    /// The run id to pass as the next page's cursor, `None` on the last page.
    pub next_cursor: Option<Uuid>,
}
