//! `pipecat account create` and `pipecat key create` (admin key).

use clap::Subcommand;
use serde_json::{Map, Value};

use super::client::{Auth, Client};
use super::output::{self, print_json};

/// Account commands (admin key).
#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Creates an account and prints it.
    Create {
        /// The account's name.
        name: String,
        /// The plan (named in the server's config; built-in: `free`).
        #[arg(long)]
        plan: Option<String>,
        /// Overrides the plan's monthly run limit for this account.
        #[arg(long)]
        monthly_run_limit: Option<u64>,
    },
    /// Lists the accounts.
    List,
}

/// API key commands (admin key).
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Creates an API key for an account; the key is shown only this once.
    Create {
        /// The account the key belongs to.
        account_id: String,
        /// A label for the key, e.g. `ci`.
        #[arg(long)]
        name: String,
    },
}

/// Runs one account command.
pub async fn run_account(
    client: &Client,
    command: AccountCommand,
    json: bool,
) -> anyhow::Result<()> {
    match command {
        AccountCommand::Create {
            name,
            plan,
            monthly_run_limit,
        } => {
            let mut body = Map::new();
            body.insert("name".to_owned(), Value::String(name));
            if let Some(plan) = plan {
                body.insert("plan".to_owned(), Value::String(plan));
            }
            if let Some(limit) = monthly_run_limit {
                body.insert("monthly_run_limit".to_owned(), Value::from(limit));
            }
            let account = client
                .post_json(Auth::Admin, &["v1", "accounts"], &Value::Object(body))
                .await?;
            print_json(&account);
        }
        AccountCommand::List => {
            let accounts = client.get(Auth::Admin, &["v1", "accounts"], &[]).await?;
            if json {
                print_json(&accounts);
            } else {
                output::print_items(
                    output::list_items(&accounts, "accounts"),
                    &["id", "name", "plan", "monthly_run_limit"],
                    "no accounts",
                );
            }
        }
    }
    Ok(())
}

/// Runs one key command.
pub async fn run_key(client: &Client, command: KeyCommand, json: bool) -> anyhow::Result<()> {
    match command {
        KeyCommand::Create { account_id, name } => {
            let key = client
                .post_json(
                    Auth::Admin,
                    &["v1", "accounts", &account_id, "keys"],
                    &serde_json::json!({ "name": name }),
                )
                .await?;
            print_json(&key);
            if !json {
                eprintln!(
                    "note: the key is shown only once; store it now (e.g. as PIPECAT_API_KEY)"
                );
            }
        }
    }
    Ok(())
}
