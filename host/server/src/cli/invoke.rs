//! `pipecat invoke <workflow_id>`.

use std::io::Read as _;

use anyhow::Context as _;
use clap::Args;
use serde_json::{Map, Value};

use super::client::{Auth, Client};
use super::output::print_json;

/// Arguments of `pipecat invoke`.
#[derive(Debug, Args)]
pub struct InvokeArgs {
    /// The workflow to run (its latest published version unless `--version` is given).
    pub workflow_id: String,
    /// The input as text. Without `--input` or `--input-json`, the input is read from stdin as text.
    #[arg(long, conflicts_with = "input_json")]
    pub input: Option<String>,
    /// The input as a JSON value (object, array, string, number, …).
    #[arg(long, value_name = "JSON")]
    pub input_json: Option<String>,
    /// Runs this published version instead of the latest.
    #[arg(long)]
    pub version: Option<u64>,
}

/// The outcome of an invocation, for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// `status` was `success` (or `running`, for an asynchronous run).
    Success,
    /// `status` was `error` or `cancelled`.
    Failed,
}

/// Invokes the workflow and prints the JSON answer.
pub async fn run(client: &Client, args: InvokeArgs) -> anyhow::Result<RunOutcome> {
    let input = read_input(&args)?;
    let mut body = Map::new();
    body.insert("input".to_owned(), input);
    if let Some(version) = args.version {
        body.insert("version".to_owned(), Value::from(version));
    }
    let answer = client
        .post_json(
            Auth::Api,
            &["invoke", &args.workflow_id, "invoke"],
            &Value::Object(body),
        )
        .await?;
    print_json(&answer);
    Ok(outcome(&answer))
}

/// The run's outcome from its `status`.
pub fn outcome(answer: &Value) -> RunOutcome {
    match answer.get("status").and_then(Value::as_str) {
        Some("error" | "cancelled") => RunOutcome::Failed,
        _ => RunOutcome::Success,
    }
}

fn read_input(args: &InvokeArgs) -> anyhow::Result<Value> {
    if let Some(text) = &args.input {
        return Ok(Value::String(text.clone()));
    }
    if let Some(json) = &args.input_json {
        return serde_json::from_str(json).context("--input-json is not valid JSON");
    }
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("cannot read the input from stdin")?;
    let trimmed = text.strip_suffix('\n').unwrap_or(&text);
    let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
    Ok(Value::String(trimmed.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_and_cancelled_runs_fail() {
        assert_eq!(outcome(&json!({"status": "success"})), RunOutcome::Success);
        assert_eq!(outcome(&json!({"status": "error"})), RunOutcome::Failed);
        assert_eq!(outcome(&json!({"status": "cancelled"})), RunOutcome::Failed);
    }

    #[test]
    fn json_input_is_parsed_and_text_input_kept() {
        let args = |input: Option<&str>, input_json: Option<&str>| InvokeArgs {
            workflow_id: "w".to_owned(),
            input: input.map(str::to_owned),
            input_json: input_json.map(str::to_owned),
            version: None,
        };
        assert_eq!(
            read_input(&args(None, Some(r#"{"a": 1}"#))).expect("json"),
            json!({"a": 1})
        );
        assert_eq!(
            read_input(&args(Some("2+2"), None)).expect("text"),
            json!("2+2")
        );
        assert!(read_input(&args(None, Some("{"))).is_err());
    }
}
