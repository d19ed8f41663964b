use pipecat_plugin_sdk::tool;

/// Not a function.
#[tool]
struct Args {
    n: i64,
}

fn main() {}
