use pipecat_plugin_sdk::{ToolError, tool};

/// Async tools are not supported.
#[tool]
async fn wait(args: String) -> Result<String, ToolError> {
    Ok(args)
}

fn main() {}
