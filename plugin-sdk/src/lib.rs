//! Write Pipecat tools in Rust and build them as WebAssembly components of the `pipecat:plugin` world.
//!
//! A **tool** is a plain function taking one argument struct (`Deserialize + JsonSchema`) and returning
//! `Result<impl Serialize, ToolError>`, marked with [`#[tool]`](tool). Its doc comment is the description
//! shown to language models, its name is the function's (or `#[tool(name = "...")]`), and the JSON Schema
//! of its arguments is derived with [`schemars`]. A **plugin** lists its tools with [`plugin!`], which
//! exports the WIT `tools` interface.
//!
//! ```
//! use pipecat_plugin_sdk::{ToolError, plugin, tool};
//! use schemars::JsonSchema;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize, JsonSchema)]
//! struct AddArgs {
//!     /// The first number.
//!     a: f64,
//!     /// The second number.
//!     b: f64,
//! }
//!
//! #[derive(Serialize)]
//! struct Sum {
//!     sum: f64,
//! }
//!
//! /// Adds two numbers.
//! #[tool]
//! fn add(args: AddArgs) -> Result<Sum, ToolError> {
//!     Ok(Sum { sum: args.a + args.b })
//! }
//!
//! /// Greets someone; a `String` result is returned to the host as is.
//! #[tool(name = "say-hello")]
//! fn greet(args: GreetArgs) -> Result<String, ToolError> {
//!     if args.name.is_empty() {
//!         return Err(ToolError::failed("nobody to greet"));
//!     }
//!     let greeting = pipecat_plugin_sdk::config::get_or("greeting", "Hello");
//!     pipecat_plugin_sdk::log::info("greeting someone");
//!     Ok(format!("{greeting}, {}!", args.name))
//! }
//!
//! #[derive(Deserialize, JsonSchema)]
//! struct GreetArgs {
//!     name: String,
//! }
//!
//! plugin!(add, greet);
//!
//! // Natively (in unit tests) the plugin can be called the way the host calls it.
//! use pipecat_plugin_sdk::PluginTools;
//! assert_eq!(Plugin::call("add", r#"{"a": 1, "b": 2}"#).unwrap(), r#"{"sum":3.0}"#);
//! ```
//!
//! The crate is a `cdylib` built with `cargo build --target wasm32-wasip2 --release`; the `.wasm` file in
//! `target/wasm32-wasip2/release/` is the component to upload.
//!
//! # What the macros do with errors
//! - Arguments that do not deserialize into the argument type become `invalid-arguments` with serde's message.
//! - `Err(ToolError::failed(msg))` becomes `failed(msg)`; [`http::Error`] and [`serde_json::Error`]
//!   convert into [`ToolError::Failed`] with `?`.
//!
//! # Layout
//! - [`tool`] and [`plugin!`] (from `pipecat-plugin-sdk-macros`) describe each function as a [`Tool`]
//!   (through a hidden type of the same name) and generate a [`PluginTools`] implementation; [`plugin`](mod@plugin) holds the runtime they call.
//! - [`config`], [`log`] and [`http`] wrap the host's imports with friendly types.
//! - `bindings` is generated once by `wit-bindgen` from the repository's `wit/` folder.

pub mod config;
mod error;
pub mod http;
pub mod log;
pub mod plugin;

pub use error::ToolError;
pub use pipecat_plugin_sdk_macros::{plugin, tool};
pub use plugin::{PluginTools, Tool, ToolInfo};

/// Re-exported so plugin crates can name the versions the SDK uses.
pub use schemars;
/// Re-exported so plugin crates can name the versions the SDK uses.
pub use serde;
/// Re-exported so plugin crates can name the versions the SDK uses.
pub use serde_json;

/// Bindings generated from `wit/plugin.wit`; used by the code the macros generate.
#[doc(hidden)]
#[allow(missing_docs, clippy::all, unsafe_op_in_unsafe_fn, rust_2018_idioms)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "pipecat:plugin/plugin",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "::pipecat_plugin_sdk::bindings",
    });
}

/// Used by the code the macros generate; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::plugin::{Describe, invoke, schema_of};
}
