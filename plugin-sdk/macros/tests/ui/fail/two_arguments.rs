use pipecat_plugin_sdk::{ToolError, tool};

/// Adds.
#[tool]
fn add(a: f64, b: f64) -> Result<f64, ToolError> {
    Ok(a + b)
}

fn main() {}
