//! `pipecat-fake-llm`: the fake LLM provider served standalone, for benchmarks against other servers.
//!
//! ```text
//! pipecat-fake-llm [--port P] [--tool-round-arguments '<json>'] [--text '<text>']
//! ```
//!
//! It listens on `127.0.0.1:P` (default 0: a free port), prints `listening on http://127.0.0.1:PORT`
//! on stdout, and serves OpenAI Chat Completions (`/v1/chat/completions`) and Anthropic Messages
//! (`/v1/messages`), plain and streamed, with no added latency and without recording requests.
//! `GET /fake/stats` answers `{"requests": N}`.
//!
//! The reply: with `--tool-round-arguments`, a stateless tool round ([`Reply::ToolRound`]): call the
//! first offered tool with those arguments, then answer `--text` (default `"done"`) once the tool
//! result is back. With only `--text`, that text. With neither, the last user message (echo).
//! It stops on SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::process::ExitCode;

use pipecat_fake_llm::{FakeLlm, Reply};
use serde_json::Value;

const USAGE: &str =
    "usage: pipecat-fake-llm [--port P] [--tool-round-arguments '<json>'] [--text '<text>']";

struct Args {
    port: u16,
    arguments: Option<Value>,
    text: Option<String>,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut out = Args {
        port: 0,
        arguments: None,
        text: None,
    };
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--port" => {
                out.port = value
                    .parse()
                    .map_err(|e| format!("--port {value:?}: {e}"))?;
            }
            "--tool-round-arguments" => {
                let v: Value = serde_json::from_str(&value)
                    .map_err(|e| format!("--tool-round-arguments is not JSON: {e}"))?;
                out.arguments = Some(v);
            }
            "--text" => out.text = Some(value),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(out)
}

async fn shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            if e.is_empty() {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            eprintln!("pipecat-fake-llm: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let fake = match FakeLlm::start_on(SocketAddr::from(([127, 0, 0, 1], args.port))).await {
        Ok(f) => f,
        Err(e) => {
            eprintln!("pipecat-fake-llm: cannot bind 127.0.0.1:{}: {e}", args.port);
            return ExitCode::FAILURE;
        }
    };
    fake.set_recording(false);
    match (args.arguments, args.text) {
        (Some(arguments), text) => fake.set_default(Reply::ToolRound {
            arguments,
            text: text.unwrap_or_else(|| "done".to_owned()),
        }),
        (None, Some(text)) => fake.set_default(Reply::Text(text)),
        (None, None) => {}
    }
    println!("listening on {}", fake.base_url());
    shutdown().await;
    ExitCode::SUCCESS
}
