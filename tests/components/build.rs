//! Builds the guest test components under `tests/guests` into `wasm32-wasip2` components.

use pipecat_wasm_build::{Component, Emit, build};

fn main() {
    build(
        &[
            Component {
                package: "sandbox-guest",
                constant: "SANDBOX_GUEST",
            },
            Component {
                package: "echo-guest",
                constant: "ECHO_GUEST",
            },
            Component {
                package: "other-world-guest",
                constant: "OTHER_WORLD_GUEST",
            },
        ],
        &["tests/guests"],
        Emit::Path,
    );
}
