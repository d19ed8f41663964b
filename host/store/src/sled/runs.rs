//! Runs (with a per-workflow index, newest first by UUIDv7 id) and monthly run counters.

use time::OffsetDateTime;
use uuid::Uuid;

use super::SledStore;
use super::codec::{SledResultExt, dec, enc};
use super::keys;
use super::wal::{TreeId, WalEntry};
use crate::{RunPage, RunQuery, RunRecord, RunStatus, StoreError, StoreResult};

impl SledStore {
    /// Writes the run and its index; returns the same writes for the run log.
    pub(super) fn put_run_sync(&self, run: &RunRecord) -> StoreResult<WalEntry> {
        let status = run.status.to_byte();
        let mut value = Vec::with_capacity(512);
        value.push(status);
        value.extend_from_slice(&enc("run", run)?);
        self.room_for(value.len(), "recording a run")?;
        let key = keys::pair(run.account_id, run.run_id);
        let index = keys::triple(run.account_id, run.workflow_id, run.run_id);
        // Index value: status byte ‖ version (be), so listings filter without reading records.
        let mut entry = [0u8; 5];
        entry[0] = status;
        entry[1..].copy_from_slice(&run.version.to_be_bytes());
        // Two plain inserts, not a sled transaction (which cost more than the writes): the record first,
        // so the index never points at a missing run; the run log replays both after a crash.
        self.t
            .runs
            .insert(key, value.as_slice())
            .ctx("recording a run")?;
        self.t
            .runs_by_workflow
            .insert(&index[..], &entry[..])
            .ctx("indexing a run")?;
        let mut logged = WalEntry::default();
        logged.insert(TreeId::Runs, &key, &value);
        logged.insert(TreeId::RunsByWorkflow, &index, &entry);
        Ok(logged)
    }

    pub(super) fn get_run_sync(
        &self,
        account_id: Uuid,
        run_id: Uuid,
    ) -> StoreResult<Option<RunRecord>> {
        match self
            .t
            .runs
            .get(keys::pair(account_id, run_id))
            .ctx("reading a run")?
        {
            Some(v) => Ok(Some(decode_run(&v)?)),
            None => Ok(None),
        }
    }

    pub(super) fn list_runs_sync(
        &self,
        account_id: Uuid,
        workflow_id: Option<Uuid>,
        query: RunQuery,
    ) -> StoreResult<RunPage> {
        let limit = query.limit.max(1);
        let (tree, prefix) = match workflow_id {
            Some(wf) => (
                &self.t.runs_by_workflow,
                keys::pair(account_id, wf).to_vec(),
            ),
            None => (&self.t.runs, account_id.as_bytes().to_vec()),
        };
        // Run ids are UUIDv7: the time range and the cursor are both key ranges.
        let with = |id: [u8; 16]| {
            let mut k = prefix.clone();
            k.extend_from_slice(&id);
            k
        };
        let start = with(query.since.map_or([0; 16], first_id_at));
        let mut end = with(query.until.map_or([0xff; 16], first_id_at));
        if let Some(cursor) = query.cursor {
            end = end.min(with(*cursor.as_bytes()));
        }
        if start >= end {
            return Ok(RunPage {
                runs: Vec::new(),
                next_cursor: None,
            });
        }
        let mut runs = Vec::new();
        let mut more = false;
        for item in tree.range(start..end).rev() {
            let (k, v) = item.ctx("listing runs")?;
            let status = v.first().copied().and_then(RunStatus::from_byte);
            if query.status.is_some() && status != query.status {
                continue;
            }
            let indexed_version = match (workflow_id, v.get(1..5)) {
                (Some(_), Some(b)) => b.try_into().ok().map(u32::from_be_bytes),
                _ => None,
            };
            if query
                .version
                .is_some_and(|want| indexed_version.is_some_and(|have| have != want))
            {
                continue;
            }
            if runs.len() == limit {
                more = true;
                break;
            }
            let run = if workflow_id.is_some() {
                let run_id = keys::uuid_at(&k, prefix.len())?;
                // The run is written before its index; a miss means a concurrent deletion.
                match self.get_run_sync(account_id, run_id)? {
                    Some(run) => run,
                    None => continue,
                }
            } else {
                decode_run(&v)?
            };
            if query.version.is_some_and(|want| want != run.version) {
                continue;
            }
            runs.push(run);
        }
        let next_cursor = if more {
            runs.last().map(|r: &RunRecord| r.run_id)
        } else {
            None
        };
        Ok(RunPage { runs, next_cursor })
    }

    /// Counts one run; returns the count and the counter's write for the run log.
    pub(super) fn reserve_run_sync(
        &self,
        account_id: Uuid,
        month: &str,
        limit: u64,
    ) -> StoreResult<(u64, WalEntry)> {
        let key = keys::month(account_id, month)?;
        // fetch_and_update is a compare-and-swap loop: concurrent callers are serialised on the counter.
        let before = self
            .t
            .run_counters
            .fetch_and_update(&key, |old| {
                let used = old.map(read_u64).unwrap_or(0);
                if used < limit {
                    Some((used + 1).to_be_bytes().to_vec())
                } else {
                    old.map(<[u8]>::to_vec)
                }
            })
            .ctx("counting a run")?;
        let used = before.as_deref().map(read_u64).unwrap_or(0);
        if used < limit {
            let mut logged = WalEntry::default();
            logged.max_u64(TreeId::RunCounters, &key, used + 1);
            Ok((used + 1, logged))
        } else {
            Err(StoreError::LimitExceeded { used, limit })
        }
    }

    pub(super) fn runs_used_sync(&self, account_id: Uuid, month: &str) -> StoreResult<u64> {
        let key = keys::month(account_id, month)?;
        Ok(self
            .t
            .run_counters
            .get(key)
            .ctx("reading a run counter")?
            .as_deref()
            .map(read_u64)
            .unwrap_or(0))
    }
}

fn decode_run(v: &[u8]) -> StoreResult<RunRecord> {
    dec("run", v.get(1..).unwrap_or_default())
}

/// The smallest UUIDv7 of a millisecond: the 48-bit Unix time in milliseconds, then zeros.
pub(super) fn first_id_at(at: OffsetDateTime) -> [u8; 16] {
    let ms = (at.unix_timestamp_nanos() / 1_000_000).clamp(0, (1 << 48) - 1);
    let ms = u64::try_from(ms).unwrap_or(0);
    let mut id = [0u8; 16];
    id[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    id
}

fn read_u64(bytes: &[u8]) -> u64 {
    bytes.try_into().map(u64::from_be_bytes).unwrap_or(0)
}
