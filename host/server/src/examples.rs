//! `--with-examples`: a demo account and key, the shipped plugins, and the example workflows published.

use std::collections::BTreeMap;

use pipecat_store::Account;
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::ApiError;
use crate::routes::accounts::issue_key;
use crate::state::AppState;

include!(concat!(env!("OUT_DIR"), "/examples.rs"));

/// What seeding created.
#[derive(Debug, Clone)]
pub struct Demo {
    /// The demo account.
    pub account_id: Uuid,
    /// A fresh key of the demo account (shown once).
    pub api_key: String,
    /// Workflow name → id of each published example.
    pub workflows: BTreeMap<String, Uuid>,
}

const DEMO_ACCOUNT: &str = "demo";

/// Creates (or reuses) the demo account, uploads the shipped plugins that changed and publishes each example
/// workflow whose document changed. Idempotent apart from the new key.
pub async fn seed(state: &AppState) -> anyhow::Result<Demo> {
    let store = &state.store;
    let now = OffsetDateTime::now_utc();
    let accounts = store.list_accounts().await?;
    let account = match accounts.into_iter().find(|a| a.name == DEMO_ACCOUNT) {
        Some(a) => a,
        None => {
            let a = Account {
                id: Uuid::now_v7(),
                name: DEMO_ACCOUNT.to_string(),
                plan: "enterprise".to_string(),
                monthly_run_limit: None,
                created_at: now,
            };
            store.create_account(&a).await?;
            a
        }
    };
    let (api_key, _) = issue_key(state, account.id, "examples")
        .await
        .map_err(api_err)?;

    for (name, bytes) in pipecat_plugins::SHIPPED {
        let id = blake3::hash(bytes).to_hex().to_string();
        let latest = store.latest_plugin_version(account.id, name).await?;
        if latest.as_ref().is_some_and(|v| v.id == id) {
            continue;
        }
        let plugin = state
            .runtime
            .sandbox
            .load(bytes)
            .await
            .map_err(|e| anyhow::anyhow!("loading shipped plugin {name}: {e}"))?;
        let tools = crate::runtime::tools_json(&plugin);
        store
            .add_plugin_version(account.id, name, bytes, tools, now)
            .await?;
    }

    let mut workflows = BTreeMap::new();
    let existing = store.list_workflows(account.id).await?;
    for (file, text) in EXAMPLE_WORKFLOWS {
        let doc: Value = serde_json::from_str(text).map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
        let name = doc["name"]
            .as_str()
            .unwrap_or(file.trim_end_matches(".json"))
            .to_string();
        let workflow = match existing.iter().find(|w| w.name == name) {
            Some(w) if w.draft == doc && w.published_version.is_some() => {
                workflows.insert(name, w.id);
                continue;
            }
            Some(w) => store
                .update_workflow_draft(account.id, w.id, &name, doc.clone(), now)
                .await?
                .ok_or_else(|| anyhow::anyhow!("workflow {name} vanished"))?,
            None => {
                let w = pipecat_store::Workflow {
                    id: Uuid::now_v7(),
                    account_id: account.id,
                    name: name.clone(),
                    draft: doc.clone(),
                    published_version: None,
                    created_at: now,
                    updated_at: now,
                };
                store.create_workflow(&w).await?;
                w
            }
        };
        match state.runtime.check_publish(state, account.id, &doc).await {
            Ok(pins) => {
                store
                    .publish_workflow(account.id, workflow.id, doc, pins, now)
                    .await?;
                workflows.insert(name, workflow.id);
            }
            Err(crate::runtime::PublishError::Invalid(problems)) => {
                tracing::warn!(workflow = %name, ?problems, "example workflow not published");
            }
            Err(crate::runtime::PublishError::Internal(e)) => return Err(e),
        }
    }
    Ok(Demo {
        account_id: account.id,
        api_key,
        workflows,
    })
}

fn api_err(e: ApiError) -> anyhow::Error {
    match e {
        ApiError::Internal(e) => e,
        other => anyhow::anyhow!("{other}"),
    }
}
