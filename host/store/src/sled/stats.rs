//! Workflow statistics blobs (opaque, written by the server's stats task) and run retention.

use super::SledStore;
use super::codec::SledResultExt;
use super::keys;
use super::runs::first_id_at;
use crate::{RetentionPolicy, StatsBlob, StoreResult};

/// Deletions are applied in batches of this many runs.
const PRUNE_BATCH: usize = 4096;

impl SledStore {
    pub(super) fn put_stats_sync(&self, blobs: &[StatsBlob]) -> StoreResult<()> {
        let size = blobs.iter().map(|b| b.data.len()).max().unwrap_or(0);
        self.room_for(size, "writing statistics")?;
        let mut batch = sled::Batch::default();
        for blob in blobs {
            batch.insert(
                &keys::pair(blob.account_id, blob.workflow_id)[..],
                blob.data.as_slice(),
            );
        }
        self.t.stats.apply_batch(batch).ctx("writing statistics")
    }

    pub(super) fn load_stats_sync(&self) -> StoreResult<Vec<StatsBlob>> {
        let mut out = Vec::new();
        for item in self.t.stats.iter() {
            let (k, v) = item.ctx("reading statistics")?;
            out.push(StatsBlob {
                account_id: keys::uuid_at(&k, 0)?,
                workflow_id: keys::uuid_at(&k, 16)?,
                data: v.to_vec(),
            });
        }
        Ok(out)
    }

    /// Walks the per-workflow run index newest first, one workflow after another, and deletes what the
    /// policy selects. The age is read off the UUIDv7 run id, so no record is decoded.
    pub(super) fn prune_runs_sync(&self, policy: RetentionPolicy) -> StoreResult<u64> {
        if policy.older_than.is_none() && policy.max_runs_per_workflow.is_none() {
            return Ok(0);
        }
        let cutoff = policy.older_than.map(first_id_at);
        let keep = policy.max_runs_per_workflow.unwrap_or(usize::MAX);
        let mut group: Option<[u8; 32]> = None;
        let mut seen = 0usize;
        let mut doomed: Vec<sled::IVec> = Vec::new();
        let mut deleted = 0u64;
        for item in self.t.runs_by_workflow.iter().rev() {
            let (k, _) = item.ctx("scanning runs for retention")?;
            let Some(prefix) = k.get(..32).and_then(|p| <[u8; 32]>::try_from(p).ok()) else {
                continue;
            };
            if group != Some(prefix) {
                group = Some(prefix);
                seen = 0;
            }
            seen += 1;
            let too_old = match (cutoff, k.get(32..48)) {
                (Some(cutoff), Some(id)) => id < &cutoff[..],
                _ => false,
            };
            if seen > keep || too_old {
                doomed.push(k);
                if doomed.len() >= PRUNE_BATCH {
                    deleted += self.delete_indexed_runs(&mut doomed)?;
                }
            }
        }
        deleted += self.delete_indexed_runs(&mut doomed)?;
        Ok(deleted)
    }

    /// Deletes runs given by index keys (`account ‖ workflow ‖ run`): the records first, then the index
    /// entries (a listing skips an index entry whose record is gone).
    fn delete_indexed_runs(&self, index_keys: &mut Vec<sled::IVec>) -> StoreResult<u64> {
        let mut runs = sled::Batch::default();
        let mut index = sled::Batch::default();
        let n = index_keys.len() as u64;
        for k in index_keys.drain(..) {
            let (Ok(account), Ok(run)) = (keys::uuid_at(&k, 0), keys::uuid_at(&k, 32)) else {
                continue;
            };
            runs.remove(&keys::pair(account, run)[..]);
            index.remove(k);
        }
        self.t.runs.apply_batch(runs).ctx("pruning runs")?;
        self.t
            .runs_by_workflow
            .apply_batch(index)
            .ctx("pruning the run index")?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::OffsetDateTime;
    use uuid::{NoContext, Timestamp, Uuid};

    use crate::{RetentionPolicy, RunQuery, RunRecord, RunStatus, SledStore, StatsBlob};

    fn run_at(account: Uuid, workflow: Uuid, secs_ago: i64) -> RunRecord {
        let at = OffsetDateTime::now_utc() - time::Duration::seconds(secs_ago);
        let secs = u64::try_from(at.unix_timestamp()).expect("after 1970");
        RunRecord {
            run_id: Uuid::new_v7(Timestamp::from_unix(NoContext, secs, 0)),
            account_id: account,
            workflow_id: workflow,
            version: 1,
            status: RunStatus::Success,
            started_at: at,
            record: json!({}),
        }
    }

    #[test]
    fn prunes_by_age_and_count_per_workflow() {
        let dir = tempfile::tempdir().expect("dir");
        let store = SledStore::open(dir.path()).expect("store");
        let account = Uuid::now_v7();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let day = 86_400;
        // Workflow a: runs 1, 2, … 6 days old; workflow b: 5 runs of the last hour.
        let old: Vec<RunRecord> = (1..=6).map(|d| run_at(account, a, d * day)).collect();
        let recent: Vec<RunRecord> = (1..=5).map(|m| run_at(account, b, m * 60)).collect();
        for r in old.iter().chain(&recent) {
            store.put_run_sync(r).expect("put");
        }
        let list = |wf| {
            store
                .list_runs_sync(account, Some(wf), RunQuery::default())
                .expect("list")
                .runs
                .into_iter()
                .map(|r| r.run_id)
                .collect::<Vec<_>>()
        };
        // Older than 3.5 days: the 4-, 5- and 6-day-old runs go.
        let cutoff = OffsetDateTime::now_utc() - time::Duration::seconds(3 * day + day / 2);
        let n = store
            .prune_runs_sync(RetentionPolicy {
                older_than: Some(cutoff),
                max_runs_per_workflow: None,
            })
            .expect("prune");
        assert_eq!(n, 3);
        assert_eq!(
            list(a),
            old[..3].iter().map(|r| r.run_id).collect::<Vec<_>>()
        );
        assert!(
            store
                .get_run_sync(account, old[5].run_id)
                .expect("get")
                .is_none()
        );
        // At most 2 per workflow: the newest stay.
        let n = store
            .prune_runs_sync(RetentionPolicy {
                older_than: None,
                max_runs_per_workflow: Some(2),
            })
            .expect("prune");
        assert_eq!(n, 1 + 3);
        assert_eq!(list(a), [old[0].run_id, old[1].run_id]);
        assert_eq!(list(b), [recent[0].run_id, recent[1].run_id]);
        assert_eq!(
            store
                .prune_runs_sync(RetentionPolicy::default())
                .expect("no policy"),
            0
        );

        // Statistics blobs round-trip and are replaced per workflow.
        let blob = |wf, data: &[u8]| StatsBlob {
            account_id: account,
            workflow_id: wf,
            data: data.to_vec(),
        };
        store
            .put_stats_sync(&[blob(a, b"1"), blob(b, b"2")])
            .expect("put");
        store.put_stats_sync(&[blob(a, b"3")]).expect("put");
        let mut loaded = store.load_stats_sync().expect("load");
        loaded.sort_by_key(|x| x.workflow_id);
        assert_eq!(loaded, [blob(a, b"3"), blob(b, b"2")]);
    }
}
