//! [`CachedStore`]: a read-through memory cache in front of any [`Store`] for what every invocation reads —
//! the API key by hash, its account, and the published workflow version — so the hot path does no store
//! lookup and no JSON decoding.
//!
//! Exact, not eventually consistent: the store is single-process (an OS lock keeps any other process out),
//! so every write passes through this wrapper, and each write method drops what it changes *after* the
//! inner write returned. A read that missed fills the cache only if no invalidation happened since it began
//! (an epoch checked under the map's lock), so a slow read can never put back a value a write replaced.
//! Only found objects are cached (a flood of unknown keys cannot grow it); each map is bounded and simply
//! emptied when full.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    Account, ApiKey, DynStore, IdempotencyEntry, KeyHash, PluginVersion, Published,
    RetentionPolicy, RunPage, RunQuery, RunRecord, StatsBlob, Store, StoreResult, Workflow,
    WorkflowVersion,
};

/// Entries of the key, account and latest-version maps before one is emptied (small entries).
const CAPACITY: usize = 100_000;
/// Entries of the published-version map: each holds a whole document (up to the body limit), so it
/// matches the server's cache of parsed workflows.
const VERSION_CAPACITY: usize = 10_000;

/// One bounded map with an invalidation epoch.
struct Map<K, V> {
    entries: RwLock<HashMap<K, V>>,
    capacity: usize,
    /// Bumped (under the write lock) by every invalidation.
    epoch: AtomicU64,
}

impl<K: Hash + Eq, V: Clone> Map<K, V> {
    fn new(capacity: usize) -> Self {
        Map {
            entries: RwLock::new(HashMap::new()),
            capacity,
            epoch: AtomicU64::new(0),
        }
    }

    fn get(&self, key: &K) -> Option<V> {
        self.entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    /// The value under `key`, else `load`'s (kept when found and nothing was invalidated meanwhile).
    async fn get_or_load<F>(&self, key: K, load: F) -> StoreResult<Option<V>>
    where
        F: Future<Output = StoreResult<Option<V>>>,
    {
        if let Some(v) = self.get(&key) {
            return Ok(Some(v));
        }
        let seen = self.epoch.load(Ordering::Acquire);
        let loaded = load.await?;
        if let Some(v) = &loaded {
            let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
            if self.epoch.load(Ordering::Acquire) == seen {
                if entries.len() >= self.capacity {
                    entries.clear();
                }
                entries.insert(key, v.clone());
            }
        }
        Ok(loaded)
    }

    /// Keeps only the entries `keep` accepts, and fails every fill that began before.
    fn retain(&self, keep: impl FnMut(&K, &mut V) -> bool) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        entries.retain(keep);
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    fn remove(&self, key: &K) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        entries.remove(key);
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }
}

/// A store with the invocation path's reads cached in memory. Wrap the backend once, at open.
pub struct CachedStore {
    inner: DynStore,
    keys: Map<KeyHash, Arc<ApiKey>>,
    accounts: Map<Uuid, Arc<Account>>,
    /// (account, workflow) → the latest published version number (`None`: not published).
    latest: Map<(Uuid, Uuid), Option<u32>>,
    /// (account, workflow, version) → the published version (immutable until the workflow is deleted).
    versions: Map<(Uuid, Uuid, u32), Arc<WorkflowVersion>>,
}

impl CachedStore {
    /// Wraps `inner`.
    pub fn new(inner: DynStore) -> Self {
        CachedStore {
            inner,
            keys: Map::new(CAPACITY),
            accounts: Map::new(CAPACITY),
            latest: Map::new(CAPACITY),
            versions: Map::new(VERSION_CAPACITY),
        }
    }

    async fn version(
        &self,
        account_id: Uuid,
        workflow_id: Uuid,
        version: u32,
    ) -> StoreResult<Option<Arc<WorkflowVersion>>> {
        self.versions
            .get_or_load((account_id, workflow_id, version), async {
                let v = self
                    .inner
                    .get_workflow_version(account_id, workflow_id, version)
                    .await?;
                Ok(v.map(Arc::new))
            })
            .await
    }

    fn forget_workflow(&self, account_id: Uuid, workflow_id: Uuid) {
        self.latest.remove(&(account_id, workflow_id));
        self.versions
            .retain(|(a, w, _), _| (*a, *w) != (account_id, workflow_id));
    }
}

#[async_trait]
impl Store for CachedStore {
    async fn admin_key_hash(&self) -> StoreResult<Option<KeyHash>> {
        self.inner.admin_key_hash().await
    }

    async fn set_admin_key_hash(&self, hash: KeyHash) -> StoreResult<()> {
        self.inner.set_admin_key_hash(hash).await
    }

    async fn create_account(&self, account: &Account) -> StoreResult<()> {
        self.inner.create_account(account).await
    }

    async fn get_account(&self, id: Uuid) -> StoreResult<Option<Account>> {
        let found = self
            .accounts
            .get_or_load(id, async {
                Ok(self.inner.get_account(id).await?.map(Arc::new))
            })
            .await?;
        Ok(found.map(Arc::unwrap_or_clone))
    }

    async fn list_accounts(&self) -> StoreResult<Vec<Account>> {
        self.inner.list_accounts().await
    }

    async fn update_account(&self, account: &Account) -> StoreResult<bool> {
        let updated = self.inner.update_account(account).await;
        self.accounts.remove(&account.id);
        updated
    }

    async fn create_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        self.inner.create_api_key(key).await
    }

    async fn api_key_by_hash(&self, hash: &KeyHash) -> StoreResult<Option<ApiKey>> {
        let found = self
            .keys
            .get_or_load(*hash, async {
                Ok(self.inner.api_key_by_hash(hash).await?.map(Arc::new))
            })
            .await?;
        Ok(found.map(Arc::unwrap_or_clone))
    }

    async fn get_api_key(&self, key_id: Uuid) -> StoreResult<Option<ApiKey>> {
        self.inner.get_api_key(key_id).await
    }

    async fn list_api_keys(&self, account_id: Uuid) -> StoreResult<Vec<ApiKey>> {
        self.inner.list_api_keys(account_id).await
    }

    async fn revoke_api_key(
        &self,
        key_id: Uuid,
        at: OffsetDateTime,
    ) -> StoreResult<Option<ApiKey>> {
        let revoked = self.inner.revoke_api_key(key_id, at).await;
        self.keys.retain(|_, key| key.id != key_id);
        revoked
    }

    async fn add_plugin_version(
        &self,
        account_id: Uuid,
        name: &str,
        bytes: &[u8],
        tools: Value,
        created_at: OffsetDateTime,
    ) -> StoreResult<PluginVersion> {
        self.inner
            .add_plugin_version(account_id, name, bytes, tools, created_at)
            .await
    }

    async fn get_plugin_blob(&self, id: &str) -> StoreResult<Option<Vec<u8>>> {
        self.inner.get_plugin_blob(id).await
    }

    async fn list_plugins(&self, account_id: Uuid) -> StoreResult<Vec<PluginVersion>> {
        self.inner.list_plugins(account_id).await
    }

    async fn list_plugin_versions(
        &self,
        account_id: Uuid,
        name: &str,
    ) -> StoreResult<Vec<PluginVersion>> {
        self.inner.list_plugin_versions(account_id, name).await
    }

    async fn latest_plugin_version(
        &self,
        account_id: Uuid,
        name: &str,
    ) -> StoreResult<Option<PluginVersion>> {
        self.inner.latest_plugin_version(account_id, name).await
    }

    async fn delete_plugin(&self, account_id: Uuid, name: &str) -> StoreResult<usize> {
        self.inner.delete_plugin(account_id, name).await
    }

    async fn create_workflow(&self, workflow: &Workflow) -> StoreResult<()> {
        self.inner.create_workflow(workflow).await
    }

    async fn get_workflow(&self, account_id: Uuid, id: Uuid) -> StoreResult<Option<Workflow>> {
        self.inner.get_workflow(account_id, id).await
    }

    async fn list_workflows(&self, account_id: Uuid) -> StoreResult<Vec<Workflow>> {
        self.inner.list_workflows(account_id).await
    }

    async fn update_workflow_draft(
        &self,
        account_id: Uuid,
        id: Uuid,
        name: &str,
        draft: Value,
        updated_at: OffsetDateTime,
    ) -> StoreResult<Option<Workflow>> {
        let updated = self
            .inner
            .update_workflow_draft(account_id, id, name, draft, updated_at)
            .await;
        self.latest.remove(&(account_id, id));
        updated
    }

    async fn delete_workflow(&self, account_id: Uuid, id: Uuid) -> StoreResult<bool> {
        let deleted = self.inner.delete_workflow(account_id, id).await;
        self.forget_workflow(account_id, id);
        deleted
    }

    async fn publish_workflow(
        &self,
        account_id: Uuid,
        workflow_id: Uuid,
        document: Value,
        pins: BTreeMap<String, String>,
        published_at: OffsetDateTime,
    ) -> StoreResult<Option<WorkflowVersion>> {
        let published = self
            .inner
            .publish_workflow(account_id, workflow_id, document, pins, published_at)
            .await;
        self.latest.remove(&(account_id, workflow_id));
        published
    }

    async fn get_workflow_version(
        &self,
        account_id: Uuid,
        workflow_id: Uuid,
        version: u32,
    ) -> StoreResult<Option<WorkflowVersion>> {
        let found = self.version(account_id, workflow_id, version).await?;
        Ok(found.map(Arc::unwrap_or_clone))
    }

    async fn published_version(
        &self,
        account_id: Uuid,
        workflow_id: Uuid,
        requested: Option<u32>,
    ) -> StoreResult<Published> {
        let latest = self
            .latest
            .get_or_load((account_id, workflow_id), async {
                let workflow = self.inner.get_workflow(account_id, workflow_id).await?;
                Ok(workflow.map(|w| w.published_version))
            })
            .await?;
        let number = match (latest, requested) {
            (None, _) => return Ok(Published::NoWorkflow),
            (Some(None), _) => return Ok(Published::NotPublished),
            (Some(Some(latest)), requested) => requested.unwrap_or(latest),
        };
        Ok(match self.version(account_id, workflow_id, number).await? {
            Some(v) => Published::Found(v),
            None => Published::NoSuchVersion(number),
        })
    }

    async fn list_workflow_versions(
        &self,
        account_id: Uuid,
        workflow_id: Uuid,
    ) -> StoreResult<Vec<WorkflowVersion>> {
        self.inner
            .list_workflow_versions(account_id, workflow_id)
            .await
    }

    async fn put_run(&self, run: &RunRecord) -> StoreResult<()> {
        self.inner.put_run(run).await
    }

    async fn get_run(&self, account_id: Uuid, run_id: Uuid) -> StoreResult<Option<RunRecord>> {
        self.inner.get_run(account_id, run_id).await
    }

    async fn list_runs(
        &self,
        account_id: Uuid,
        workflow_id: Option<Uuid>,
        query: RunQuery,
    ) -> StoreResult<RunPage> {
        self.inner.list_runs(account_id, workflow_id, query).await
    }

    async fn prune_runs(&self, policy: RetentionPolicy) -> StoreResult<u64> {
        self.inner.prune_runs(policy).await
    }

    async fn put_stats(&self, blobs: &[StatsBlob]) -> StoreResult<()> {
        self.inner.put_stats(blobs).await
    }

    async fn load_stats(&self) -> StoreResult<Vec<StatsBlob>> {
        self.inner.load_stats().await
    }

    async fn reserve_run(&self, account_id: Uuid, month: &str, limit: u64) -> StoreResult<u64> {
        self.inner.reserve_run(account_id, month, limit).await
    }

    async fn runs_used(&self, account_id: Uuid, month: &str) -> StoreResult<u64> {
        self.inner.runs_used(account_id, month).await
    }

    async fn put_run_events(
        &self,
        account_id: Uuid,
        run_id: Uuid,
        events: &[Value],
    ) -> StoreResult<()> {
        self.inner.put_run_events(account_id, run_id, events).await
    }

    async fn get_run_events(
        &self,
        account_id: Uuid,
        run_id: Uuid,
    ) -> StoreResult<Option<Vec<Value>>> {
        self.inner.get_run_events(account_id, run_id).await
    }

    async fn claim_idempotency_key(
        &self,
        account_id: Uuid,
        key: &str,
        entry: &IdempotencyEntry,
        expired_before: OffsetDateTime,
    ) -> StoreResult<Option<IdempotencyEntry>> {
        self.inner
            .claim_idempotency_key(account_id, key, entry, expired_before)
            .await
    }

    async fn put_idempotency_key(
        &self,
        account_id: Uuid,
        key: &str,
        entry: &IdempotencyEntry,
    ) -> StoreResult<()> {
        self.inner.put_idempotency_key(account_id, key, entry).await
    }

    async fn delete_idempotency_key(&self, account_id: Uuid, key: &str) -> StoreResult<()> {
        self.inner.delete_idempotency_key(account_id, key).await
    }

    async fn purge_idempotency_keys(&self, expired_before: OffsetDateTime) -> StoreResult<u64> {
        self.inner.purge_idempotency_keys(expired_before).await
    }

    async fn flush(&self) -> StoreResult<()> {
        self.inner.flush().await
    }

    async fn size_on_disk(&self) -> StoreResult<u64> {
        self.inner.size_on_disk().await
    }

    async fn check_ready(&self) -> StoreResult<()> {
        self.inner.check_ready().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_read_that_raced_an_invalidation_does_not_fill_the_cache() {
        let map: Map<u32, &str> = Map::new(CAPACITY);
        // The load reads the old value, then a write invalidates before the load's answer is kept.
        let loaded = map
            .get_or_load(1, async {
                map.remove(&1);
                Ok(Some("old"))
            })
            .await
            .unwrap();
        assert_eq!(loaded, Some("old"), "the caller still gets what it read");
        assert_eq!(map.get(&1), None, "but the stale value is not kept");
        // Without a race the value is kept.
        map.get_or_load(1, async { Ok(Some("new")) }).await.unwrap();
        assert_eq!(map.get(&1), Some("new"));
    }
}
