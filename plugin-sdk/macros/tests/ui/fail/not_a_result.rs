use pipecat_plugin_sdk::tool;

/// Returns a plain number.
#[tool]
fn answer(args: String) -> u32 {
    args.len() as u32
}

fn main() {}
