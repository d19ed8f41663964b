//! The embedded store on sled 0.34: one tree per entity, account-prefixed keys, an OS lock on the data
//! directory, a format marker, group commit for durability, and a watchdog that turns disk writes stuck
//! past a limit into errors (`stall.rs`).

mod accounts;
mod codec;
mod commit;
mod events;
mod idempotency;
mod keys;
mod malloc;
mod open;
mod plugins;
mod runs;
mod space;
mod stall;
mod stats;
mod wal;
mod workflows;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use self::codec::SledResultExt;
use self::commit::GroupCommit;
pub use self::open::{FORMAT_VERSION, MARKER_FILE};
use self::stall::Watchdog;
use self::wal::{ReplayTrees, Wal};
use crate::{
    Account, ApiKey, IdempotencyEntry, KeyHash, PluginVersion, RetentionPolicy, RunPage, RunQuery,
    RunRecord, StatsBlob, Store, StoreError, StoreResult, Workflow, WorkflowVersion,
};

const META: &str = "meta";
/// Every tree the store uses.
const TREE_NAMES: &[&str] = &[
    META,
    "accounts",
    "api_keys",
    "api_keys_by_account",
    "api_key_hashes",
    "plugin_blobs",
    "plugin_versions",
    "plugin_seq",
    "workflows",
    "workflow_versions",
    "runs",
    "runs_by_workflow",
    "run_counters",
    "stats",
    "run_events",
    "idempotency",
];

/// How writes are made durable. Both modes flush before a mutating method returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Concurrent writers share flushes (the default).
    #[default]
    GroupCommit,
    /// Every write runs its own flush (for comparison in benchmarks).
    FlushEachWrite,
}

/// How [`SledStore::open_with_options`] opens a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// How writes are made durable.
    pub durability: Durability,
    /// How long one disk write of the store's writer threads (a group-commit flush, a run-log write or
    /// checkpoint) may take before the store counts as stalled: then writes fail with
    /// [`StoreError::Stalled`] at once, writers already waiting get that error, and closing the store does
    /// not wait for the stuck thread. [`StoreOptions::DEFAULT_STALL_LIMIT`] unless set.
    pub stall_limit: Duration,
}

impl StoreOptions {
    /// The default stall limit: 30 s.
    pub const DEFAULT_STALL_LIMIT: Duration = stall::DEFAULT_STALL_LIMIT;
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            durability: Durability::default(),
            stall_limit: Self::DEFAULT_STALL_LIMIT,
        }
    }
}

/// The sled trees, one per entity (plus indexes).
struct Trees {
    /// Format version, admin key hash, readiness probe.
    meta: sled::Tree,
    /// account id → Account.
    accounts: sled::Tree,
    /// key id → ApiKey.
    api_keys: sled::Tree,
    /// account ‖ key id → ().
    api_keys_by_account: sled::Tree,
    /// key hash → key id.
    api_key_hashes: sled::Tree,
    /// blake3 of the bytes → bytes.
    plugin_blobs: sled::Tree,
    /// account ‖ name ‖ 0 ‖ version → PluginVersion.
    plugin_versions: sled::Tree,
    /// account ‖ name ‖ 0 → last version number.
    plugin_seq: sled::Tree,
    /// account ‖ workflow id → Workflow.
    workflows: sled::Tree,
    /// account ‖ workflow id ‖ version → WorkflowVersion.
    workflow_versions: sled::Tree,
    /// account ‖ run id → status byte ‖ RunRecord.
    runs: sled::Tree,
    /// account ‖ workflow id ‖ run id → status byte.
    runs_by_workflow: sled::Tree,
    /// account ‖ "YYYY-MM" → u64 count.
    run_counters: sled::Tree,
    /// account ‖ workflow id → serialized statistics (the server's format).
    stats: sled::Tree,
    /// account ‖ run id → the run's events (JSON array).
    run_events: sled::Tree,
    /// account ‖ idempotency key → IdempotencyEntry.
    idempotency: sled::Tree,
}

impl Trees {
    fn open(db: &sled::Db) -> StoreResult<Self> {
        let t = |name: &str| db.open_tree(name).ctx("opening a tree");
        Ok(Trees {
            meta: t(META)?,
            accounts: t("accounts")?,
            api_keys: t("api_keys")?,
            api_keys_by_account: t("api_keys_by_account")?,
            api_key_hashes: t("api_key_hashes")?,
            plugin_blobs: t("plugin_blobs")?,
            plugin_versions: t("plugin_versions")?,
            plugin_seq: t("plugin_seq")?,
            workflows: t("workflows")?,
            workflow_versions: t("workflow_versions")?,
            runs: t("runs")?,
            runs_by_workflow: t("runs_by_workflow")?,
            run_counters: t("run_counters")?,
            stats: t("stats")?,
            run_events: t("run_events")?,
            idempotency: t("idempotency")?,
        })
    }
}

/// The embedded store. Open it once per data directory; a second open (in this or another process) is
/// refused with [`StoreError::Locked`]. Dropping it flushes and releases the directory.
pub struct SledStore {
    t: Trees,
    db: sled::Db,
    commit: GroupCommit,
    /// The log that makes run records and counters durable ([`Durability::GroupCommit`] only).
    wal: Option<Wal>,
    /// Times the rounds of the flusher and the log, and says when the store is stalled.
    watchdog: Arc<Watchdog>,
    durability: Durability,
    /// sled's data file, for `fdatasync` in [`Durability::FlushEachWrite`] mode.
    data_file: Arc<File>,
    dir: PathBuf,
    /// Held until the store is closed (or, when closing found it stalled, until its threads end).
    lock: Option<File>,
}

impl SledStore {
    /// Opens (or creates) the store in `dir` with group commit.
    ///
    /// Refuses a directory locked by another store ([`StoreError::Locked`]), a damaged store
    /// ([`StoreError::Corrupt`]), a non-empty directory that is not a store ([`StoreError::NotAStore`]) and
    /// a newer format ([`StoreError::UnsupportedFormat`]).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use std::sync::Arc;
    /// use pipecat_store::{DynStore, SledStore, Store};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let store: DynStore = Arc::new(SledStore::open(dir.path().join("data")).unwrap());
    /// let account = uuid::Uuid::now_v7();
    /// assert_eq!(store.reserve_run(account, "2026-12", 10).await.unwrap(), 1);
    /// # });
    /// ```
    pub fn open(dir: impl AsRef<Path>) -> StoreResult<Self> {
        Self::open_with(dir, Durability::GroupCommit)
    }

    /// Opens with an explicit [`Durability`] mode.
    pub fn open_with(dir: impl AsRef<Path>, durability: Durability) -> StoreResult<Self> {
        Self::open_with_options(
            dir,
            StoreOptions {
                durability,
                ..StoreOptions::default()
            },
        )
    }

    /// Opens with explicit [`StoreOptions`] (durability mode, stall limit).
    pub fn open_with_options(dir: impl AsRef<Path>, options: StoreOptions) -> StoreResult<Self> {
        let StoreOptions {
            durability,
            stall_limit,
        } = options;
        let dir = dir.as_ref().to_path_buf();
        let opened = open::open_dir(&dir, TREE_NAMES)?;
        let t = Trees::open(&opened.db)?;
        let data_path = dir.join(open::SLED_DIR).join("db");
        let data_file = File::open(&data_path)
            .map_err(|e| StoreError::io(format!("opening {}", data_path.display()), e))?;
        let watchdog = Watchdog::start(stall_limit)?;
        let commit = GroupCommit::start(
            opened.db.clone(),
            data_file
                .try_clone()
                .map_err(|e| StoreError::io("duplicating a file handle", e))?,
            Arc::clone(&watchdog),
        )?;
        let wal = match durability {
            Durability::GroupCommit => Some(Wal::open(
                &dir,
                opened.db.clone(),
                t.meta.clone(),
                data_file
                    .try_clone()
                    .map_err(|e| StoreError::io("duplicating a file handle", e))?,
                &ReplayTrees {
                    runs: &t.runs,
                    runs_by_workflow: &t.runs_by_workflow,
                    run_counters: &t.run_counters,
                },
                Arc::clone(&watchdog),
            )?),
            Durability::FlushEachWrite => None,
        };
        tracing::info!(dir = %dir.display(), "store opened");
        Ok(SledStore {
            t,
            db: opened.db,
            commit,
            wal,
            watchdog,
            durability,
            data_file: Arc::new(data_file),
            dir,
            lock: Some(opened.lock),
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many flushes (fsync rounds) ran since open: sled flushes of the group commit plus rounds of the
    /// run log.
    pub fn flush_count(&self) -> u64 {
        self.commit.flushes() + self.wal.as_ref().map_or(0, Wal::rounds)
    }

    /// True while a disk write of the store has been in progress longer than the stall limit (writes then
    /// fail with [`StoreError::Stalled`]); false again once it completes.
    pub fn is_stalled(&self) -> bool {
        self.watchdog.is_stalled()
    }

    /// Fault injection for tests: disk writes of the store's writer threads that start from now on block
    /// (as if the disk never answered) until [`SledStore::release_disk_writes`]. Costs one relaxed load
    /// per round when unused.
    #[doc(hidden)]
    pub fn hold_disk_writes(&self) {
        self.watchdog.hold();
    }

    /// Ends [`SledStore::hold_disk_writes`]; if the store was stalled, returns once the held writes have
    /// completed and it no longer is.
    #[doc(hidden)]
    pub fn release_disk_writes(&self) {
        self.watchdog.release();
    }

    /// Makes the writes made so far durable, according to the durability mode.
    async fn durable(&self) -> StoreResult<()> {
        match self.durability {
            Durability::GroupCommit => self.commit.wait().await,
            Durability::FlushEachWrite => {
                // Not sled's `flush_async`: it hung under concurrent callers in 0.34.7 (seen in the bench).
                let (db, file) = (self.db.clone(), Arc::clone(&self.data_file));
                tokio::task::spawn_blocking(move || commit::flush_durably(&db, &file))
                    .await
                    .map_err(|_| StoreError::Closed)?
                    .ctx("flushing to disk")
            }
        }
    }
}

impl Drop for SledStore {
    fn drop(&mut self) {
        let mut stuck: Vec<_> = self
            .wal
            .as_ref()
            .and_then(Wal::shutdown)
            .into_iter()
            .collect();
        stuck.extend(self.commit.shutdown());
        let stalled = self.watchdog.is_stalled();
        self.watchdog.shutdown();
        if stalled || !stuck.is_empty() {
            // A thread stuck in a round keeps sled's files in use: the directory stays locked until it ends.
            tracing::error!(
                dir = %self.dir.display(),
                "store NOT closed cleanly: its disk writes are stalled, so the last flush was skipped; the \
                 next start replays the run log and recovers what reached the disk"
            );
            let lock = self.lock.take();
            let reaper = std::thread::Builder::new()
                .name("pipecat-store-stuck".into())
                .spawn(move || {
                    for thread in stuck {
                        let _ = thread.join();
                    }
                    drop(lock);
                });
            if let Err(e) = reaper {
                tracing::error!(error = %e, "cannot watch the stuck store threads; the directory stays locked");
            }
            return;
        }
        match open::mark_clean_shutdown(&self.dir, &self.db) {
            Ok(()) => tracing::info!(dir = %self.dir.display(), "store closed"),
            Err(e) => {
                tracing::error!(dir = %self.dir.display(), error = %e, "store closed without a clean-shutdown mark")
            }
        }
    }
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore")
            .field("dir", &self.dir)
            .field("durability", &self.durability)
            .finish()
    }
}

#[async_trait]
impl Store for SledStore {
    async fn admin_key_hash(&self) -> StoreResult<Option<KeyHash>> {
        self.admin_key_hash_sync()
    }

    async fn set_admin_key_hash(&self, hash: KeyHash) -> StoreResult<()> {
        self.set_admin_key_hash_sync(hash)?;
        self.durable().await
    }

    async fn create_account(&self, account: &Account) -> StoreResult<()> {
        self.create_account_sync(account)?;
        self.durable().await
    }

    async fn get_account(&self, id: Uuid) -> StoreResult<Option<Account>> {
        self.get_account_sync(id)
    }

    async fn list_accounts(&self) -> StoreResult<Vec<Account>> {
        self.list_accounts_sync()
    }

    async fn update_account(&self, account: &Account) -> StoreResult<bool> {
        let found = self.update_account_sync(account)?;
        self.durable().await?;
        Ok(found)
    }

    async fn create_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        self.create_api_key_sync(key)?;
        self.durable().await
    }

    async fn api_key_by_hash(&self, hash: &KeyHash) -> StoreResult<Option<ApiKey>> {
        self.api_key_by_hash_sync(hash)
    }

    async fn get_api_key(&self, key_id: Uuid) -> StoreResult<Option<ApiKey>> {
        self.get_api_key_sync(key_id)
    }

    async fn list_api_keys(&self, account_id: Uuid) -> StoreResult<Vec<ApiKey>> {
        self.list_api_keys_sync(account_id)
    }

    async fn revoke_api_key(
        &self,
        key_id: Uuid,
        at: OffsetDateTime,
    ) -> StoreResult<Option<ApiKey>> {
        let key = self.revoke_api_key_sync(key_id, at)?;
        self.durable().await?;
        Ok(key)
    }

    async fn add_plugin_version(
        &self,
        account_id: Uuid,
        name: &str,
        bytes: &[u8],
        tools: Value,
        created_at: OffsetDateTime,
    ) -> StoreResult<PluginVersion> {
        let version = self.add_plugin_version_sync(account_id, name, bytes, tools, created_at)?;
        self.durable().await?;
        Ok(version)
    }

    async fn get_plugin_blob(&self, id: &str) -> StoreResult<Option<Vec<u8>>> {
        self.get_plugin_blob_sync(id)
    }

    async fn list_plugins(&self, account_id: Uuid) -> StoreResult<Vec<PluginVersion>> {
        self.list_plugins_sync(account_id)
    }

    async fn list_plugin_versions(
        &self,
        account_id: Uuid,
        name: &str,
    ) -> StoreResult<Vec<PluginVersion>> {
        self.list_plugin_versions_sync(account_id, name)
    }

    async fn latest_plugin_version(
        &self,
        account_id: Uuid,
        name: &str,
    ) -> StoreResult<Option<PluginVersion>> {
        self.latest_plugin_version_sync(account_id, name)
    }

    async fn delete_plugin(&self, account_id: Uuid, name: &str) -> StoreResult<usize> {
        let n = self.delete_plugin_sync(account_id, name)?;
        self.durable().await?;
        Ok(n)
    }

    async fn create_workflow(&self, workflow: &Workflow) -> StoreResult<()> {
        self.create_workflow_sync(workflow)?;
        self.durable().await
    }

    async fn get_workflow(&self, account_id: Uuid, id: Uuid) -> StoreResult<Option<Workflow>> {
        self.get_workflow_sync(account_id, id)
    }

    async fn list_workflows(&self, account_id: Uuid) -> StoreResult<Vec<Workflow>> {
        self.list_workflows_sync(account_id)
    }

    async fn update_workflow_draft(
        &self,
        account_id: Uuid,
        id: Uuid,
        name: &str,
        draft: Value,
        updated_at: OffsetDateTime,
    ) -> StoreResult<Option<Workflow>> {
        let wf = self.update_workflow_draft_sync(account_id, id, name, draft, updated_at)?;
        self.durable().await?;
        Ok(wf)
    }

    async fn delete_workflow(&self, account_id: Uuid, id: Uuid) -> StoreResult<bool> {
        let found = self.delete_workflow_sync(account_id, id)?;
        self.durable().await?;
        Ok(found)
    }

    async fn publish_workflow(
        &self,
        account_id: Uuid,
        workflow_id: Uuid,
        document: Value,
        pins: BTreeMap<String, String>,
        published_at: OffsetDateTime,
    ) -> StoreResult<Option<WorkflowVersion>> {
        let version =
            self.publish_workflow_sync(account_id, workflow_id, document, pins, published_at)?;
        self.durable().await?;
        Ok(version)
    }

    async fn get_workflow_version(
        &self,
        account_id: Uuid,
        workflow_id: Uuid,
        version: u32,
    ) -> StoreResult<Option<WorkflowVersion>> {
        self.get_workflow_version_sync(account_id, workflow_id, version)
    }

    async fn list_workflow_versions(
        &self,
        account_id: Uuid,
        workflow_id: Uuid,
    ) -> StoreResult<Vec<WorkflowVersion>> {
        self.list_workflow_versions_sync(account_id, workflow_id)
    }

    async fn put_run(&self, run: &RunRecord) -> StoreResult<()> {
        let logged = self.put_run_sync(run)?;
        match &self.wal {
            Some(wal) => wal.append(logged).await,
            None => self.durable().await,
        }
    }

    async fn get_run(&self, account_id: Uuid, run_id: Uuid) -> StoreResult<Option<RunRecord>> {
        self.get_run_sync(account_id, run_id)
    }

    async fn list_runs(
        &self,
        account_id: Uuid,
        workflow_id: Option<Uuid>,
        query: RunQuery,
    ) -> StoreResult<RunPage> {
        self.list_runs_sync(account_id, workflow_id, query)
    }

    async fn prune_runs(&self, policy: RetentionPolicy) -> StoreResult<u64> {
        // A replay of the log after a crash must not bring back what this deletes.
        if let Some(wal) = &self.wal {
            wal.checkpoint().await?;
        }
        let n = self.prune_runs_sync(policy)?;
        if n > 0 {
            self.durable().await?;
        }
        Ok(n)
    }

    async fn put_stats(&self, blobs: &[StatsBlob]) -> StoreResult<()> {
        self.put_stats_sync(blobs)?;
        self.durable().await
    }

    async fn load_stats(&self) -> StoreResult<Vec<StatsBlob>> {
        self.load_stats_sync()
    }

    async fn reserve_run(&self, account_id: Uuid, month: &str, limit: u64) -> StoreResult<u64> {
        let (used, logged) = self.reserve_run_sync(account_id, month, limit)?;
        match &self.wal {
            // Durable with the run's record: every path that reserves goes on to a durable write of the
            // run, queued after this entry.
            Some(wal) => wal.append_later(logged)?,
            None => self.durable().await?,
        }
        Ok(used)
    }

    async fn runs_used(&self, account_id: Uuid, month: &str) -> StoreResult<u64> {
        self.runs_used_sync(account_id, month)
    }

    async fn put_run_events(
        &self,
        account_id: Uuid,
        run_id: Uuid,
        events: &[Value],
    ) -> StoreResult<()> {
        self.put_run_events_sync(account_id, run_id, events)?;
        self.durable().await
    }

    async fn get_run_events(
        &self,
        account_id: Uuid,
        run_id: Uuid,
    ) -> StoreResult<Option<Vec<Value>>> {
        self.get_run_events_sync(account_id, run_id)
    }

    async fn claim_idempotency_key(
        &self,
        account_id: Uuid,
        key: &str,
        entry: &IdempotencyEntry,
        expired_before: OffsetDateTime,
    ) -> StoreResult<Option<IdempotencyEntry>> {
        let existing = self.claim_idempotency_key_sync(account_id, key, entry, expired_before)?;
        if existing.is_none() {
            self.durable().await?;
        }
        Ok(existing)
    }

    async fn put_idempotency_key(
        &self,
        account_id: Uuid,
        key: &str,
        entry: &IdempotencyEntry,
    ) -> StoreResult<()> {
        self.put_idempotency_key_sync(account_id, key, entry)?;
        self.durable().await
    }

    async fn delete_idempotency_key(&self, account_id: Uuid, key: &str) -> StoreResult<()> {
        self.delete_idempotency_key_sync(account_id, key)?;
        self.durable().await
    }

    async fn purge_idempotency_keys(&self, expired_before: OffsetDateTime) -> StoreResult<u64> {
        let removed = self.purge_idempotency_keys_sync(expired_before)?;
        self.durable().await?;
        Ok(removed)
    }

    async fn flush(&self) -> StoreResult<()> {
        self.durable().await
    }

    async fn size_on_disk(&self) -> StoreResult<u64> {
        self.db.size_on_disk().ctx("measuring the store")
    }

    async fn check_ready(&self) -> StoreResult<()> {
        // Not ready while a disk write is stuck, nor while large values would be refused for want of space.
        self.watchdog.check()?;
        self.room_for(space::LARGE, "checking free space")?;
        let now = OffsetDateTime::now_utc()
            .unix_timestamp_nanos()
            .to_be_bytes();
        self.t
            .meta
            .insert(b"ready_probe", &now)
            .ctx("writing the readiness probe")?;
        self.durable().await
    }
}
