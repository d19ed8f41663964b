use pipecat_plugin_sdk::{PluginTools, ToolError, plugin, tool};
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Deserialize, JsonSchema)]
struct Args {
    n: i64,
}

mod math {
    use super::*;

    /// Doubles a number.
    #[tool]
    pub fn double(args: Args) -> Result<i64, ToolError> {
        Ok(args.n * 2)
    }
}

/// Echoes a number as text.
#[tool(name = "echo-text")]
fn r#echo(Args { n }: Args) -> Result<String, ToolError> {
    Ok(n.to_string())
}

plugin!(math::double, r#echo);

fn main() {
    assert_eq!(Plugin::call("double", r#"{"n": 21}"#).unwrap(), "42");
    assert_eq!(Plugin::call("echo-text", r#"{"n": 7}"#).unwrap(), "7");
}
