//! Persistence for Pipecat Host.
//!
//! # Layout
//! - [`Store`] (this file): the backend-neutral, object-safe trait the server codes against
//!   (`Arc<dyn Store>`). Every mutating method returns only once its data is durable on disk.
//! - [`types`]: the records (accounts, API keys, plugin versions, workflows, published versions, runs).
//! - [`error`]: [`StoreError`], one `thiserror` enum; I/O errors are mapped (full disk included).
//! - [`SledStore`] (`sled/`): the embedded implementation on sled 0.34 — a tree per entity, keys prefixed by
//!   account id, a lock file against a second process, a format marker, and a group-commit flusher
//!   that makes many concurrent writes share one fsync.
//!
//! - [`CachedStore`] (`cache.rs`): a read-through memory cache in front of a backend for what every
//!   invocation reads (key by hash, account, published version), invalidated exactly by the writes.
//!
//! # How a write flows
//! `put_run` → the record and its workflow index inserted into sled → the record appended to the run log
//! (ADR 004) → the log thread takes everything queued, writes it with one `pwrite` + `fdatasync`, and
//! wakes every writer of that round → `put_run` returns `Ok`. Other writes (accounts, keys, workflows)
//! join the group-commit queue of sled flushes the same way.
//!
//! A watchdog times each round of those two threads: one stuck past the stall limit (30 s by default,
//! [`StoreOptions`]) fails the waiting writers, and every new one, with [`StoreError::Stalled`] until it
//! completes, so a wedged disk or sled answers errors instead of hanging requests and shutdown.

mod cache;
pub mod error;
mod idempotency;
mod sled;
pub mod types;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

pub use crate::cache::CachedStore;
pub use crate::error::{StoreError, StoreResult};
pub use crate::idempotency::IdempotencyEntry;
pub use crate::sled::{Durability, FORMAT_VERSION, MARKER_FILE, SledStore, StoreOptions};
pub use crate::types::{
    Account, ApiKey, KeyHash, PluginVersion, RetentionPolicy, RunPage, RunQuery, RunRecord,
    RunStatus, StatsBlob, Workflow, WorkflowVersion,
};

/// A shared handle to any store backend.
pub type DynStore = Arc<dyn Store>;

/// What [`Store::published_version`] found.
#[derive(Debug, Clone)]
pub enum Published {
    /// The version to run.
    Found(Arc<WorkflowVersion>),
    /// No such workflow in the account.
    NoWorkflow,
    /// The workflow exists but was never published.
    NotPublished,
    /// The workflow is published, but not as this version.
    NoSuchVersion(u32),
}

/// The persistence interface of the host. Object safe; all methods are async (a shared-database backend
/// is next). Ids of another account behave exactly like missing ones: `None` / `false` / empty lists.
///
/// Durability: every method that changes data returns only after the change is flushed to disk.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // ----- meta -----

    /// The hash of the operator's admin key, if one was set.
    async fn admin_key_hash(&self) -> StoreResult<Option<KeyHash>>;
    /// Sets (replaces) the admin key hash.
    async fn set_admin_key_hash(&self, hash: KeyHash) -> StoreResult<()>;

    // ----- accounts -----

    /// Creates an account; `AlreadyExists` if the id is taken.
    async fn create_account(&self, account: &Account) -> StoreResult<()>;
    /// One account.
    async fn get_account(&self, id: Uuid) -> StoreResult<Option<Account>>;
    /// All accounts, oldest id first.
    async fn list_accounts(&self) -> StoreResult<Vec<Account>>;
    /// Replaces an existing account (plan, limit, name); `false` if it does not exist.
    async fn update_account(&self, account: &Account) -> StoreResult<bool>;

    // ----- API keys -----

    /// Stores a new key (with its hash index); `AlreadyExists` if the id or hash is taken.
    async fn create_api_key(&self, key: &ApiKey) -> StoreResult<()>;
    /// The key with this hash (revoked ones included: check `revoked_at`).
    async fn api_key_by_hash(&self, hash: &KeyHash) -> StoreResult<Option<ApiKey>>;
    /// One key by id, whatever its account (admin use).
    async fn get_api_key(&self, key_id: Uuid) -> StoreResult<Option<ApiKey>>;
    /// The keys of an account, oldest first.
    async fn list_api_keys(&self, account_id: Uuid) -> StoreResult<Vec<ApiKey>>;
    /// Marks a key revoked at `at` (idempotent: the first revocation time stays). `None` if no such key.
    async fn revoke_api_key(&self, key_id: Uuid, at: OffsetDateTime)
    -> StoreResult<Option<ApiKey>>;

    // ----- plugins -----

    /// Stores the component bytes (once per content hash) and adds the next version of
    /// `(account_id, name)`, numbered atomically. Returns the new version.
    async fn add_plugin_version(
        &self,
        account_id: Uuid,
        name: &str,
        bytes: &[u8],
        tools: Value,
        created_at: OffsetDateTime,
    ) -> StoreResult<PluginVersion>;
    /// The bytes stored under a content hash (blake3 hex); shared by all accounts and versions.
    async fn get_plugin_blob(&self, id: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Every version of every plugin of an account, ordered by name then version.
    async fn list_plugins(&self, account_id: Uuid) -> StoreResult<Vec<PluginVersion>>;
    /// The versions of one plugin, oldest first (empty if none).
    async fn list_plugin_versions(
        &self,
        account_id: Uuid,
        name: &str,
    ) -> StoreResult<Vec<PluginVersion>>;
    /// The newest version of one plugin.
    async fn latest_plugin_version(
        &self,
        account_id: Uuid,
        name: &str,
    ) -> StoreResult<Option<PluginVersion>>;
    /// Deletes every version of a plugin; returns how many were deleted (0: not found). Blobs stay, since
    /// published workflow versions may pin them.
    async fn delete_plugin(&self, account_id: Uuid, name: &str) -> StoreResult<usize>;

    // ----- workflows -----

    /// Creates a workflow; `AlreadyExists` if the id is taken.
    async fn create_workflow(&self, workflow: &Workflow) -> StoreResult<()>;
    /// One workflow of an account.
    async fn get_workflow(&self, account_id: Uuid, id: Uuid) -> StoreResult<Option<Workflow>>;
    /// The workflows of an account, by id (UUIDv7 ids: oldest first).
    async fn list_workflows(&self, account_id: Uuid) -> StoreResult<Vec<Workflow>>;
    /// Replaces the draft (and name) and sets `updated_at`; `None` if there is no such workflow.
    async fn update_workflow_draft(
        &self,
        account_id: Uuid,
        id: Uuid,
        name: &str,
        draft: Value,
        updated_at: OffsetDateTime,
    ) -> StoreResult<Option<Workflow>>;
    /// Deletes a workflow and its published versions (its runs stay in the history). `false` if not found.
    async fn delete_workflow(&self, account_id: Uuid, id: Uuid) -> StoreResult<bool>;
    /// Freezes `document` as the next version (numbered atomically) and sets the workflow's
    /// `published_version`. `None` if there is no such workflow.
    async fn publish_workflow(
        &self,
        account_id: Uuid,
        workflow_id: Uuid,
        document: Value,
        pins: BTreeMap<String, String>,
        published_at: OffsetDateTime,
    ) -> StoreResult<Option<WorkflowVersion>>;
    /// One published version.
    async fn get_workflow_version(
        &self,
        account_id: Uuid,
        workflow_id: Uuid,
        version: u32,
    ) -> StoreResult<Option<WorkflowVersion>>;
    /// The version an invocation runs: `requested`, or the latest published one.
    async fn published_version(
        &self,
        account_id: Uuid,
        workflow_id: Uuid,
        requested: Option<u32>,
    ) -> StoreResult<Published> {
        let Some(workflow) = self.get_workflow(account_id, workflow_id).await? else {
            return Ok(Published::NoWorkflow);
        };
        let Some(latest) = workflow.published_version else {
            return Ok(Published::NotPublished);
        };
        let number = requested.unwrap_or(latest);
        Ok(
            match self
                .get_workflow_version(account_id, workflow_id, number)
                .await?
            {
                Some(v) => Published::Found(Arc::new(v)),
                None => Published::NoSuchVersion(number),
            },
        )
    }
    /// All published versions of a workflow, oldest first.
    async fn list_workflow_versions(
        &self,
        account_id: Uuid,
        workflow_id: Uuid,
    ) -> StoreResult<Vec<WorkflowVersion>>;

    // ----- runs -----

    /// Inserts or replaces a run (an async run is put as `running`, then again when finished).
    async fn put_run(&self, run: &RunRecord) -> StoreResult<()>;
    /// One run of an account.
    async fn get_run(&self, account_id: Uuid, run_id: Uuid) -> StoreResult<Option<RunRecord>>;
    /// Runs newest first: of one workflow when `workflow_id` is set, else of the whole account.
    async fn list_runs(
        &self,
        account_id: Uuid,
        workflow_id: Option<Uuid>,
        query: RunQuery,
    ) -> StoreResult<RunPage>;

    /// Deletes the run records the policy selects (with their index entries); returns how many.
    async fn prune_runs(&self, policy: RetentionPolicy) -> StoreResult<u64>;

    // ----- statistics -----

    /// Replaces the stored statistics of each blob's workflow, all in one durable write.
    async fn put_stats(&self, blobs: &[StatsBlob]) -> StoreResult<()>;
    /// Every stored statistics blob.
    async fn load_stats(&self) -> StoreResult<Vec<StatsBlob>>;

    // ----- monthly run limits -----

    /// Counts one accepted run for `(account_id, month)` (month as `"2026-12"`, UTC) unless that would pass
    /// `limit` (`u64::MAX`: unlimited). Returns the count after this run, or
    /// [`StoreError::LimitExceeded`]. Exact under concurrency. The count is durable no later than the next
    /// durable write of this caller (the run's record): an invocation reserves, then records its run.
    async fn reserve_run(&self, account_id: Uuid, month: &str, limit: u64) -> StoreResult<u64>;
    /// Runs counted for `(account_id, month)`.
    async fn runs_used(&self, account_id: Uuid, month: &str) -> StoreResult<u64>;

    // ----- run events and idempotency keys (streaming and run control) -----

    /// Keeps the events of a finished run (replaces any kept before).
    async fn put_run_events(
        &self,
        account_id: Uuid,
        run_id: Uuid,
        events: &[Value],
    ) -> StoreResult<()>;
    /// The kept events of a run of an account (`None`: none were kept).
    async fn get_run_events(
        &self,
        account_id: Uuid,
        run_id: Uuid,
    ) -> StoreResult<Option<Vec<Value>>>;
    /// Stores `entry` under `(account_id, key)` unless an entry created at or after `expired_before` is
    /// there; returns that entry instead. Atomic: of concurrent claims exactly one gets `None`.
    async fn claim_idempotency_key(
        &self,
        account_id: Uuid,
        key: &str,
        entry: &IdempotencyEntry,
        expired_before: OffsetDateTime,
    ) -> StoreResult<Option<IdempotencyEntry>>;
    /// Replaces the entry of a claimed key (e.g. with the response).
    async fn put_idempotency_key(
        &self,
        account_id: Uuid,
        key: &str,
        entry: &IdempotencyEntry,
    ) -> StoreResult<()>;
    /// Forgets a key (a request refused before it ran releases its key).
    async fn delete_idempotency_key(&self, account_id: Uuid, key: &str) -> StoreResult<()>;
    /// Deletes every entry created before `expired_before`; returns how many.
    async fn purge_idempotency_keys(&self, expired_before: OffsetDateTime) -> StoreResult<u64>;

    // ----- operations -----

    /// Makes every write made so far durable (shares a group commit with concurrent writers).
    async fn flush(&self) -> StoreResult<()>;
    /// Bytes the store occupies on disk.
    async fn size_on_disk(&self) -> StoreResult<u64>;
    /// `Ok` when the store is open and can durably write (for `/readyz`).
    async fn check_ready(&self) -> StoreResult<()>;
}

/// The UTC month key (`"2026-12"`) of a time, as used by [`Store::reserve_run`].
pub fn month_key(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!("{:04}-{:02}", at.year(), u8::from(at.month()))
}
