//! Workflows and their published versions.

use std::collections::BTreeMap;

use serde_json::Value;
use sled::Transactional;
use time::OffsetDateTime;
use uuid::Uuid;

use super::SledStore;
use super::codec::{SledResultExt, dec, enc, tx_dec, tx_enc, tx_err};
use super::keys;
use crate::{StoreError, StoreResult, Workflow, WorkflowVersion};

impl SledStore {
    pub(super) fn create_workflow_sync(&self, workflow: &Workflow) -> StoreResult<()> {
        let value = enc("workflow", workflow)?;
        self.room_for(value.len(), "creating a workflow")?;
        self.t
            .workflows
            .compare_and_swap(
                keys::pair(workflow.account_id, workflow.id),
                None as Option<&[u8]>,
                Some(value),
            )
            .ctx("creating a workflow")?
            .map_err(|_| StoreError::AlreadyExists { what: "workflow" })
    }

    pub(super) fn get_workflow_sync(
        &self,
        account_id: Uuid,
        id: Uuid,
    ) -> StoreResult<Option<Workflow>> {
        match self
            .t
            .workflows
            .get(keys::pair(account_id, id))
            .ctx("reading a workflow")?
        {
            Some(v) => Ok(Some(dec("workflow", &v)?)),
            None => Ok(None),
        }
    }

    pub(super) fn list_workflows_sync(&self, account_id: Uuid) -> StoreResult<Vec<Workflow>> {
        let mut out = Vec::new();
        for item in self.t.workflows.scan_prefix(account_id.as_bytes()) {
            let (_, v) = item.ctx("listing workflows")?;
            out.push(dec("workflow", &v)?);
        }
        Ok(out)
    }

    pub(super) fn update_workflow_draft_sync(
        &self,
        account_id: Uuid,
        id: Uuid,
        name: &str,
        draft: Value,
        updated_at: OffsetDateTime,
    ) -> StoreResult<Option<Workflow>> {
        let key = keys::pair(account_id, id);
        self.t
            .workflows
            .transaction(|t| {
                let Some(v) = t.get(key)? else {
                    return Ok(None);
                };
                let mut wf: Workflow = tx_dec("workflow", &v)?;
                wf.name = name.to_owned();
                wf.draft = draft.clone();
                wf.updated_at = updated_at;
                let value = tx_enc("workflow", &wf)?;
                self.tx_room_for(&value, "saving a draft")?;
                t.insert(&key, value)?;
                Ok(Some(wf))
            })
            .map_err(|e| tx_err("updating a workflow", e))
    }

    pub(super) fn delete_workflow_sync(&self, account_id: Uuid, id: Uuid) -> StoreResult<bool> {
        let key = keys::pair(account_id, id);
        (&self.t.workflows, &self.t.workflow_versions)
            .transaction(|(wfs, versions)| {
                let Some(v) = wfs.remove(&key)? else {
                    return Ok(false);
                };
                let wf: Workflow = tx_dec("workflow", &v)?;
                for n in 1..=wf.published_version.unwrap_or(0) {
                    versions.remove(&keys::workflow_version(account_id, id, n)[..])?;
                }
                Ok(true)
            })
            .map_err(|e| tx_err("deleting a workflow", e))
    }

    pub(super) fn publish_workflow_sync(
        &self,
        account_id: Uuid,
        workflow_id: Uuid,
        document: Value,
        pins: BTreeMap<String, String>,
        published_at: OffsetDateTime,
    ) -> StoreResult<Option<WorkflowVersion>> {
        let key = keys::pair(account_id, workflow_id);
        (&self.t.workflows, &self.t.workflow_versions)
            .transaction(|(wfs, versions)| {
                let Some(v) = wfs.get(key)? else {
                    return Ok(None);
                };
                let mut wf: Workflow = tx_dec("workflow", &v)?;
                let next = wf.published_version.unwrap_or(0).saturating_add(1);
                let version = WorkflowVersion {
                    workflow_id,
                    version: next,
                    document: document.clone(),
                    pins: pins.clone(),
                    published_at,
                };
                let value = tx_enc("workflow version", &version)?;
                self.tx_room_for(&value, "publishing a workflow")?;
                versions.insert(
                    &keys::workflow_version(account_id, workflow_id, next)[..],
                    value,
                )?;
                wf.published_version = Some(next);
                let value = tx_enc("workflow", &wf)?;
                self.tx_room_for(&value, "publishing a workflow")?;
                wfs.insert(&key, value)?;
                Ok(Some(version))
            })
            .map_err(|e| tx_err("publishing a workflow", e))
    }

    pub(super) fn get_workflow_version_sync(
        &self,
        account_id: Uuid,
        workflow_id: Uuid,
        version: u32,
    ) -> StoreResult<Option<WorkflowVersion>> {
        let key = keys::workflow_version(account_id, workflow_id, version);
        match self
            .t
            .workflow_versions
            .get(key)
            .ctx("reading a workflow version")?
        {
            Some(v) => Ok(Some(dec("workflow version", &v)?)),
            None => Ok(None),
        }
    }

    pub(super) fn list_workflow_versions_sync(
        &self,
        account_id: Uuid,
        workflow_id: Uuid,
    ) -> StoreResult<Vec<WorkflowVersion>> {
        let mut out = Vec::new();
        for item in self
            .t
            .workflow_versions
            .scan_prefix(keys::pair(account_id, workflow_id))
        {
            let (_, v) = item.ctx("listing workflow versions")?;
            out.push(dec("workflow version", &v)?);
        }
        Ok(out)
    }
}
