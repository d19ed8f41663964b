//! The `pipecat` command line: `serve`, and client commands against a running server.
//!
//! One file per command group (`plugin`, `workflow`, `invoke`, `runs`, `account`); all of them talk to the
//! server through [`client::Client`], which turns `{"error": {"code", "message"}}` answers into readable
//! errors. The connection options (`--server`, `--api-key`, `--admin-key`) belong to the client command
//! groups only, so they never clash with the options of `serve`.

pub mod account;
pub mod client;
pub mod invoke;
pub mod output;
pub mod plugin;
pub mod runs;
pub mod workflow;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
pub use pipecat::LogFormat;
use pipecat::ServeConfig;

use self::client::{Client, ClientError};

/// Exit codes, shown at the end of `--help`.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  `invoke`: the run finished with status \"error\" or \"cancelled\" (the answer is still printed)
  2  usage error (unknown command, bad or missing arguments)
  3  the server refused the request (its error code and message are printed; for an invalid
     workflow, every problem as `path: message`)
  4  anything else: server unreachable, unreadable file, unexpected answer, server failed to start";

/// Exit code: the invoked run failed.
pub const EXIT_RUN_FAILED: u8 = 1;
/// Exit code: the server answered with an error.
pub const EXIT_API_ERROR: u8 = 3;
/// Exit code: any other failure.
pub const EXIT_FAILURE: u8 = 4;

/// Pipecat Host: AI workflows as production APIs.
#[derive(Debug, Parser)]
#[command(name = "pipecat", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    /// Log format on stderr for client commands (the level comes from `RUST_LOG`, e.g.
    /// `RUST_LOG=debug`); `serve` has its own `--log-format`, reading the same variable.
    #[arg(long, env = "PIPECAT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Starts the server.
    Serve(ServeConfig),
    /// Uploads and lists Wasm plugins (API key).
    Plugin(Group<plugin::PluginCommand>),
    /// Deploys (create or update, then publish) and lists workflows (API key).
    Workflow(Group<workflow::WorkflowCommand>),
    /// Invokes a published workflow and prints the JSON answer (API key).
    #[command(after_help = EXIT_CODES)]
    Invoke {
        /// Connection options.
        #[command(flatten)]
        connection: Connection,
        /// What to invoke with what input.
        #[command(flatten)]
        args: invoke::InvokeArgs,
    },
    /// Lists and shows recorded runs (API key).
    Runs(Group<runs::RunsCommand>),
    /// Creates and lists accounts (admin key).
    Account(Group<account::AccountCommand>),
    /// Creates API keys for accounts (admin key).
    Key(Group<account::KeyCommand>),
}

/// A client command group: the connection options and the group's subcommand.
#[derive(Debug, Args)]
pub struct Group<C: Subcommand> {
    /// Connection options.
    #[command(flatten)]
    pub connection: Connection,
    /// The command in the group.
    #[command(subcommand)]
    pub command: C,
}

/// How client commands reach the server.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// URL of the Pipecat server.
    #[arg(
        long,
        env = "PIPECAT_SERVER",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub server: String,
    /// An account's API key (plugin, workflow, invoke and runs commands).
    #[arg(long, env = "PIPECAT_API_KEY", hide_env_values = true, global = true)]
    pub api_key: Option<String>,
    /// The operator's admin key (account and key commands).
    #[arg(long, env = "PIPECAT_ADMIN_KEY", hide_env_values = true, global = true)]
    pub admin_key: Option<String>,
    /// Prints the server's JSON answers as they are instead of tables and summaries.
    #[arg(long, global = true)]
    pub json: bool,
}

impl Cli {
    /// The log format: JSON when either the top-level or the `serve` option asks for it.
    pub fn effective_log_format(&self) -> LogFormat {
        match &self.command {
            Command::Serve(config) if config.log_format == LogFormat::Json => LogFormat::Json,
            _ => self.log_format,
        }
    }
}

impl Connection {
    fn client(&self) -> Result<Client, ClientError> {
        Client::new(&self.server, self.api_key.clone(), self.admin_key.clone())
    }
}

/// Runs the parsed command line and returns the process exit code.
pub async fn run(command: Command) -> ExitCode {
    let result = match command {
        Command::Serve(config) => {
            return match pipecat::serve(config).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("error: {error:#}");
                    ExitCode::from(EXIT_FAILURE)
                }
            };
        }
        client_command => run_client(client_command).await,
    };
    match result {
        Ok(invoke::RunOutcome::Success) => ExitCode::SUCCESS,
        Ok(invoke::RunOutcome::Failed) => ExitCode::from(EXIT_RUN_FAILED),
        Err(error) => report(&error),
    }
}

/// Runs a client command; every command but `invoke` succeeds when it completes.
async fn run_client(command: Command) -> anyhow::Result<invoke::RunOutcome> {
    let completed = |result: anyhow::Result<()>| result.map(|()| invoke::RunOutcome::Success);
    match command {
        Command::Serve(_) => anyhow::bail!("`serve` is not a client command"),
        Command::Invoke { connection, args } => invoke::run(&connection.client()?, args).await,
        Command::Plugin(Group {
            connection,
            command,
        }) => completed(plugin::run(&connection.client()?, command, connection.json).await),
        Command::Workflow(Group {
            connection,
            command,
        }) => completed(workflow::run(&connection.client()?, command, connection.json).await),
        Command::Runs(Group {
            connection,
            command,
        }) => completed(runs::run(&connection.client()?, command, connection.json).await),
        Command::Account(Group {
            connection,
            command,
        }) => {
            completed(account::run_account(&connection.client()?, command, connection.json).await)
        }
        Command::Key(Group {
            connection,
            command,
        }) => completed(account::run_key(&connection.client()?, command, connection.json).await),
    }
}

/// Prints an error (and, for API errors, each listed problem) and picks the exit code.
fn report(error: &anyhow::Error) -> ExitCode {
    match error.downcast_ref::<ClientError>() {
        Some(api @ ClientError::Api { .. }) => {
            eprintln!("error: {api}");
            for line in api.detail_lines() {
                eprintln!("  {line}");
            }
            ExitCode::from(EXIT_API_ERROR)
        }
        _ => {
            eprintln!("error: {error:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn connection_options_work_before_and_after_the_subcommand() {
        let before = Cli::try_parse_from(["pipecat", "workflow", "--server", "http://h:1", "list"])
            .expect("parses");
        let after = Cli::try_parse_from([
            "pipecat",
            "workflow",
            "list",
            "--server",
            "http://h:1",
            "--json",
        ])
        .expect("parses");
        for cli in [before, after] {
            match cli.command {
                Command::Workflow(group) => assert_eq!(group.connection.server, "http://h:1"),
                other => panic!("parsed as {other:?}"),
            }
        }
    }

    #[test]
    fn input_and_input_json_conflict() {
        let parsed = Cli::try_parse_from([
            "pipecat",
            "invoke",
            "wf",
            "--input",
            "a",
            "--input-json",
            "1",
        ]);
        assert!(parsed.is_err());
    }
}
