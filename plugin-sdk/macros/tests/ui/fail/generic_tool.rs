use pipecat_plugin_sdk::{ToolError, tool};

/// Generic.
#[tool]
fn echo<T>(args: T) -> Result<T, ToolError> {
    Ok(args)
}

fn main() {}
