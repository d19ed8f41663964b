//! Idempotency keys: `account ‖ key` → [`IdempotencyEntry`], claimed with a compare-and-swap so that of
//! concurrent first uses exactly one wins.

use time::OffsetDateTime;
use uuid::Uuid;

use super::SledStore;
use super::codec::{SledResultExt, dec, enc};
use crate::{IdempotencyEntry, StoreError, StoreResult};

fn key(account_id: Uuid, key: &str) -> StoreResult<Vec<u8>> {
    if key.is_empty() || key.len() > 1024 {
        return Err(StoreError::InvalidInput(
            "an idempotency key must have 1 to 1024 bytes".into(),
        ));
    }
    let mut k = Vec::with_capacity(16 + key.len());
    k.extend_from_slice(account_id.as_bytes());
    k.extend_from_slice(key.as_bytes());
    Ok(k)
}

impl SledStore {
    pub(super) fn claim_idempotency_key_sync(
        &self,
        account_id: Uuid,
        idempotency_key: &str,
        entry: &IdempotencyEntry,
        expired_before: OffsetDateTime,
    ) -> StoreResult<Option<IdempotencyEntry>> {
        let k = key(account_id, idempotency_key)?;
        let new = enc("idempotency entry", entry)?;
        self.room_for(new.len(), "recording an idempotency key")?;
        loop {
            let current = self
                .t
                .idempotency
                .get(&k)
                .ctx("reading an idempotency key")?;
            if let Some(bytes) = &current {
                let existing: IdempotencyEntry = dec("idempotency entry", bytes)?;
                if existing.created_at >= expired_before {
                    return Ok(Some(existing));
                }
            }
            match self
                .t
                .idempotency
                .compare_and_swap(&k, current, Some(new.as_slice()))
                .ctx("claiming an idempotency key")?
            {
                Ok(()) => return Ok(None),
                Err(_) => continue,
            }
        }
    }

    pub(super) fn put_idempotency_key_sync(
        &self,
        account_id: Uuid,
        idempotency_key: &str,
        entry: &IdempotencyEntry,
    ) -> StoreResult<()> {
        let value = enc("idempotency entry", entry)?;
        self.room_for(value.len(), "recording an idempotency key")?;
        self.t
            .idempotency
            .insert(key(account_id, idempotency_key)?, value)
            .ctx("recording an idempotency key")?;
        Ok(())
    }

    pub(super) fn delete_idempotency_key_sync(
        &self,
        account_id: Uuid,
        idempotency_key: &str,
    ) -> StoreResult<()> {
        self.t
            .idempotency
            .remove(key(account_id, idempotency_key)?)
            .ctx("releasing an idempotency key")?;
        Ok(())
    }

    pub(super) fn purge_idempotency_keys_sync(
        &self,
        expired_before: OffsetDateTime,
    ) -> StoreResult<u64> {
        let mut removed = 0;
        for item in self.t.idempotency.iter() {
            let (k, v) = item.ctx("scanning idempotency keys")?;
            let expired = dec::<IdempotencyEntry>("idempotency entry", &v)
                .map(|e| e.created_at < expired_before)
                .unwrap_or(true);
            if expired
                && self
                    .t
                    .idempotency
                    .compare_and_swap(&k, Some(v), None::<&[u8]>)
                    .ctx("purging an idempotency key")?
                    .is_ok()
            {
                removed += 1;
            }
        }
        Ok(removed)
    }
}
