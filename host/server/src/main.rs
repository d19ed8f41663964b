//! The `pipecat` binary: parses the command line, starts logging and runs the command.
//!
//! The server itself is the library (`pipecat::serve`); the client commands live in [`cli`].

mod cli;

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser as _;
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command, LogFormat};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(
        cli.effective_log_format(),
        matches!(cli.command, Command::Serve(_)),
    );
    cli::run(cli.command).await
}

/// Logs go to stderr (stdout is for answers and the server's address), filtered by `RUST_LOG`;
/// the default is `info` for the server and `warn` for client commands.
fn init_tracing(format: LogFormat, serving: bool) {
    let default = if serving { "info" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    // `try_init`: a subscriber already installed (e.g. by the server library) is kept.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
