//! `pipecat workflow deploy|list`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;
use serde_json::{Value, json};

use super::client::{Auth, Client};
use super::output::{self, print_json};

/// Workflow commands.
#[derive(Debug, Subcommand)]
pub enum WorkflowCommand {
    /// Creates or updates (by `name`) the workflow in a JSON document, then publishes it.
    ///
    /// Prints the workflow id and the published version. When the server rejects the document, every
    /// problem is printed as `path: message` and the exit code is 3.
    Deploy {
        /// The workflow document (JSON).
        file: PathBuf,
    },
    /// Lists the account's workflows.
    List,
}

/// Runs one workflow command.
pub async fn run(client: &Client, command: WorkflowCommand, json: bool) -> anyhow::Result<()> {
    match command {
        WorkflowCommand::Deploy { file } => {
            let deployed = deploy(client, &file).await?;
            if json {
                print_json(&json!({
                    "id": deployed.id,
                    "name": deployed.name,
                    "version": deployed.version,
                    "created": deployed.created,
                }));
            } else {
                println!(
                    "{} workflow {}: id {}, published version {}",
                    if deployed.created {
                        "created"
                    } else {
                        "updated"
                    },
                    deployed.name,
                    deployed.id,
                    deployed.version,
                );
            }
        }
        WorkflowCommand::List => {
            let workflows = list_all(client).await?;
            if json {
                print_json(&Value::Array(workflows));
            } else {
                output::print_items(
                    &workflows,
                    &["id", "name", "published_version", "updated_at"],
                    "no workflows",
                );
            }
        }
    }
    Ok(())
}

/// What `deploy` did.
#[derive(Debug)]
pub struct Deployed {
    /// The workflow id.
    pub id: String,
    /// The workflow name.
    pub name: String,
    /// The version just published.
    pub version: Value,
    /// Whether the workflow was new (created) rather than updated.
    pub created: bool,
}

/// Creates the workflow of `file` or replaces the draft of the one with the same name, then publishes it.
pub async fn deploy(client: &Client, file: &Path) -> anyhow::Result<Deployed> {
    let text = tokio::fs::read_to_string(file)
        .await
        .with_context(|| format!("cannot read {}", file.display()))?;
    let document: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", file.display()))?;
    let name = document
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .with_context(|| format!("{} has no \"name\"", file.display()))?
        .to_owned();

    let existing = list_all(client)
        .await?
        .into_iter()
        .find(|w| w.get("name").and_then(Value::as_str) == Some(name.as_str()));
    let (saved, created) = match existing.as_ref().and_then(|w| id_of(w, "id")) {
        Some(id) => {
            let saved = client
                .put_json(Auth::Api, &["v1", "workflows", &id], &document)
                .await?;
            (saved, false)
        }
        None => {
            let saved = client
                .post_json(Auth::Api, &["v1", "workflows"], &document)
                .await?;
            (saved, true)
        }
    };
    let id = id_of(&saved, "id").context("the server's answer has no workflow id")?;
    tracing::debug!(workflow_id = %id, created, "draft saved, publishing");

    let published = client
        .post_json(Auth::Api, &["v1", "workflows", &id, "publish"], &json!({}))
        .await?;
    let version = published.get("version").cloned().unwrap_or(Value::Null);
    Ok(Deployed {
        id,
        name,
        version,
        created,
    })
}

/// Every workflow of the account, following `next_cursor` pages when the server paginates.
pub async fn list_all(client: &Client) -> anyhow::Result<Vec<Value>> {
    const MAX_PAGES: usize = 1000;
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let query: Vec<(&str, String)> = cursor.iter().map(|c| ("cursor", c.clone())).collect();
        let page = client.get(Auth::Api, &["v1", "workflows"], &query).await?;
        all.extend_from_slice(output::list_items(&page, "workflows"));
        match output::next_cursor(&page) {
            Some(next) if cursor.as_deref() != Some(next.as_str()) => cursor = Some(next),
            _ => break,
        }
    }
    Ok(all)
}

/// A string (or number) id field of an answer.
fn id_of(value: &Value, key: &str) -> Option<String> {
    match value.get(key)? {
        Value::String(id) => Some(id.clone()),
        Value::Number(id) => Some(id.to_string()),
        _ => None,
    }
}
