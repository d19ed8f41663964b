//! `pipecat runs list|show`.

use clap::{Subcommand, ValueEnum};

use super::client::{Auth, Client};
use super::output::{self, print_json};

/// Run history commands.
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Lists a workflow's runs, newest first.
    List {
        /// The workflow whose runs to list.
        workflow_id: String,
        /// Only runs with this status.
        #[arg(long, value_enum)]
        status: Option<RunStatus>,
        /// At most this many runs.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Shows one run: input, output or error, tool calls and each node's timing.
    Show {
        /// The run id (printed by `invoke` as `run_id`).
        run_id: String,
    },
}

/// A run status to filter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RunStatus {
    /// Finished successfully.
    Success,
    /// Failed after it was accepted.
    Error,
    /// Cancelled before it finished.
    Cancelled,
    /// Still running (asynchronous runs).
    Running,
}

impl RunStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Error => "error",
            Self::Cancelled => "cancelled",
            Self::Running => "running",
        }
    }
}

/// Runs one runs command.
pub async fn run(client: &Client, command: RunsCommand, json: bool) -> anyhow::Result<()> {
    match command {
        RunsCommand::List {
            workflow_id,
            status,
            limit,
        } => {
            let mut query = vec![("limit", limit.to_string())];
            if let Some(status) = status {
                query.push(("status", status.as_str().to_owned()));
            }
            let page = client
                .get(
                    Auth::Api,
                    &["v1", "workflows", &workflow_id, "runs"],
                    &query,
                )
                .await?;
            if json {
                print_json(&page);
            } else {
                let runs = output::list_items(&page, "runs");
                output::print_items(
                    runs,
                    &["run_id", "status", "version", "duration_ms", "started_at"],
                    "no runs",
                );
                if let Some(cursor) = output::next_cursor(&page) {
                    println!("(more runs: next cursor {cursor})");
                }
            }
        }
        RunsCommand::Show { run_id } => {
            let run = client.get(Auth::Api, &["v1", "runs", &run_id], &[]).await?;
            print_json(&run);
        }
    }
    Ok(())
}
