//! `pipecat plugin upload|list`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;
use serde_json::Value;

use super::client::{Auth, Client};
use super::output::{self, print_json};

/// Plugin commands.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Uploads a Wasm component as a (new version of a) plugin and prints its tools.
    Upload {
        /// The component file (`.wasm`).
        file: PathBuf,
        /// The plugin's name, used in tool references (`<name>.<tool>`).
        #[arg(long)]
        name: String,
    },
    /// Lists the account's plugins.
    List,
}

/// Runs one plugin command.
pub async fn run(client: &Client, command: PluginCommand, json: bool) -> anyhow::Result<()> {
    match command {
        PluginCommand::Upload { file, name } => {
            let bytes = tokio::fs::read(&file)
                .await
                .with_context(|| format!("cannot read {}", file.display()))?;
            let plugin = client
                .post_bytes(
                    Auth::Api,
                    &["v1", "plugins"],
                    &[("name", name)],
                    "application/wasm",
                    bytes,
                )
                .await?;
            if json {
                print_json(&plugin);
            } else {
                print_uploaded(&plugin);
            }
        }
        PluginCommand::List => {
            let plugins = client.get(Auth::Api, &["v1", "plugins"], &[]).await?;
            if json {
                print_json(&plugins);
            } else {
                let items = output::list_items(&plugins, "plugins");
                output::print_items(
                    items,
                    &["name", "version", "id", "size", "created_at"],
                    "no plugins",
                );
            }
        }
    }
    Ok(())
}

fn print_uploaded(plugin: &Value) {
    println!(
        "uploaded plugin {} version {} ({} bytes), id {}",
        output::cell(plugin, "name"),
        output::cell(plugin, "version"),
        output::cell(plugin, "size"),
        output::cell(plugin, "id"),
    );
    let tools = plugin
        .get("tools")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    for tool in tools {
        println!(
            "  {}: {}",
            output::cell(tool, "name"),
            output::cell(tool, "description")
        );
    }
}
