use pipecat_plugin_sdk::{ToolError, tool};

/// Badly named.
#[tool(name = "Get Weather")]
fn weather(args: String) -> Result<String, ToolError> {
    Ok(args)
}

fn main() {}
