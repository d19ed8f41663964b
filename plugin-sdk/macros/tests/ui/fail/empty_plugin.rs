pipecat_plugin_sdk::plugin!();

fn main() {}
