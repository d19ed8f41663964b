//! Plugin blobs (content addressed, stored once) and per-account plugin versions.

use serde_json::Value;
use sled::Transactional;
use sled::transaction::ConflictableTransactionError as Abort;
use time::OffsetDateTime;
use uuid::Uuid;

use super::SledStore;
use super::codec::{SledResultExt, dec, tx_err};
use super::keys;
use crate::{PluginVersion, StoreError, StoreResult};

impl SledStore {
    pub(super) fn add_plugin_version_sync(
        &self,
        account_id: Uuid,
        name: &str,
        bytes: &[u8],
        tools: Value,
        created_at: OffsetDateTime,
    ) -> StoreResult<PluginVersion> {
        let prefix = keys::plugin_prefix(account_id, name)?;
        let hash = blake3::hash(bytes);
        self.room_for(bytes.len(), "storing plugin bytes")?;
        // Identical bytes are stored once: insert only when absent (a concurrent identical insert is fine).
        self.t
            .plugin_blobs
            .compare_and_swap(hash.as_bytes(), None as Option<&[u8]>, Some(bytes))
            .ctx("storing plugin bytes")?
            .ok();
        let size = u64::try_from(bytes.len())
            .map_err(|_| StoreError::InvalidInput("plugin too large".into()))?;
        let mut record = PluginVersion {
            account_id,
            name: name.to_owned(),
            version: 0,
            id: hash.to_hex().to_string(),
            size,
            tools,
            created_at,
        };
        (&self.t.plugin_seq, &self.t.plugin_versions)
            .transaction(|(seq, versions)| {
                let last = match seq.get(&prefix)? {
                    Some(v) => v.as_ref().try_into().map(u32::from_be_bytes).unwrap_or(0),
                    None => 0,
                };
                let mut record = record.clone();
                record.version = last.saturating_add(1);
                let value = super::codec::tx_enc("plugin version", &record)?;
                let key =
                    keys::plugin_version(account_id, name, record.version).map_err(Abort::Abort)?;
                seq.insert(prefix.as_slice(), &record.version.to_be_bytes())?;
                versions.insert(key, value)?;
                Ok(record.version)
            })
            .map(|v| record.version = v)
            .map_err(|e| tx_err("adding a plugin version", e))?;
        Ok(record)
    }

    pub(super) fn get_plugin_blob_sync(&self, id: &str) -> StoreResult<Option<Vec<u8>>> {
        let mut hash = [0u8; 32];
        if hex::decode_to_slice(id, &mut hash).is_err() {
            return Ok(None);
        }
        Ok(self
            .t
            .plugin_blobs
            .get(hash)
            .ctx("reading plugin bytes")?
            .map(|v| v.to_vec()))
    }

    pub(super) fn list_plugins_sync(&self, account_id: Uuid) -> StoreResult<Vec<PluginVersion>> {
        self.scan_plugins(account_id.as_bytes())
    }

    pub(super) fn list_plugin_versions_sync(
        &self,
        account_id: Uuid,
        name: &str,
    ) -> StoreResult<Vec<PluginVersion>> {
        self.scan_plugins(&keys::plugin_prefix(account_id, name)?)
    }

    pub(super) fn latest_plugin_version_sync(
        &self,
        account_id: Uuid,
        name: &str,
    ) -> StoreResult<Option<PluginVersion>> {
        let prefix = keys::plugin_prefix(account_id, name)?;
        match self.t.plugin_versions.scan_prefix(&prefix).next_back() {
            Some(item) => {
                let (_, v) = item.ctx("reading a plugin version")?;
                Ok(Some(dec("plugin version", &v)?))
            }
            None => Ok(None),
        }
    }

    pub(super) fn delete_plugin_sync(&self, account_id: Uuid, name: &str) -> StoreResult<usize> {
        let prefix = keys::plugin_prefix(account_id, name)?;
        let mut keys = Vec::new();
        for item in self.t.plugin_versions.scan_prefix(&prefix) {
            keys.push(item.ctx("listing plugin versions")?.0);
        }
        (&self.t.plugin_seq, &self.t.plugin_versions)
            .transaction(|(seq, versions)| {
                let mut removed = 0;
                for key in &keys {
                    if versions.remove(key.clone())?.is_some() {
                        removed += 1;
                    }
                }
                seq.remove(prefix.as_slice())?;
                Ok(removed)
            })
            .map_err(|e| tx_err("deleting a plugin", e))
    }

    fn scan_plugins(&self, prefix: &[u8]) -> StoreResult<Vec<PluginVersion>> {
        let mut out = Vec::new();
        for item in self.t.plugin_versions.scan_prefix(prefix) {
            let (_, v) = item.ctx("listing plugin versions")?;
            out.push(dec("plugin version", &v)?);
        }
        Ok(out)
    }
}
