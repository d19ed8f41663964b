//! Builds the shipped plugins to components and emits their bytes as constants.

use pipecat_wasm_build::{Component, Emit, build};

fn main() {
    build(
        &[
            Component {
                package: "calculator",
                constant: "CALCULATOR",
            },
            Component {
                package: "weather",
                constant: "WEATHER",
            },
            Component {
                package: "text",
                constant: "TEXT",
            },
            Component {
                package: "json",
                constant: "JSON",
            },
        ],
        &["plugins"],
        Emit::Bytes,
    );
}
