//! Paths of the guest components the sandbox tests run, built from `tests/guests` by `build.rs`.
//!
//! - [`SANDBOX_GUEST`]: one plugin whose tool name selects a misbehaviour (infinite loop, memory hog, unbounded
//!   recursion, huge output, panic, invalid JSON, file/env/socket access, HTTP to granted and forbidden hosts).
//! - [`ECHO_GUEST`]: a well-behaved plugin (`echo`, `fail`).
//! - [`OTHER_WORLD_GUEST`]: a component of another world, which the sandbox must refuse to load.

include!(concat!(env!("OUT_DIR"), "/components.rs"));
