//! The event log of a run (kept for `GET /v1/runs/{id}/events`), stored once when the run ends.

use serde_json::Value;
use uuid::Uuid;

use super::SledStore;
use super::codec::{SledResultExt, dec, enc};
use super::keys;
use crate::StoreResult;

impl SledStore {
    pub(super) fn put_run_events_sync(
        &self,
        account_id: Uuid,
        run_id: Uuid,
        events: &[Value],
    ) -> StoreResult<()> {
        let value = enc("run events", &events)?;
        self.room_for(value.len(), "recording run events")?;
        self.t
            .run_events
            .insert(keys::pair(account_id, run_id), value)
            .ctx("recording run events")?;
        Ok(())
    }

    pub(super) fn get_run_events_sync(
        &self,
        account_id: Uuid,
        run_id: Uuid,
    ) -> StoreResult<Option<Vec<Value>>> {
        match self
            .t
            .run_events
            .get(keys::pair(account_id, run_id))
            .ctx("reading run events")?
        {
            Some(v) => Ok(Some(dec("run events", &v)?)),
            None => Ok(None),
        }
    }
}
