//! Procedural macros of `pipecat-plugin-sdk`; use them through that crate (`pipecat_plugin_sdk::tool`,
//! `pipecat_plugin_sdk::plugin!`), which documents them with examples.
//!
//! Every misuse is reported with `syn::Error::new_spanned` at the offending tokens; the macros never panic.

use proc_macro::TokenStream;

mod plugin;
mod tool;

/// Marks a function as a tool: `fn name(args: Args) -> Result<impl Serialize, E>` where
/// `Args: Deserialize + JsonSchema` and `E: Into<ToolError>`.
///
/// The doc comment is the tool's description; the name is the function's unless given with
/// `#[tool(name = "...")]` (`[a-z0-9_-]`, at most 64 characters); `#[tool(description = "...")]` overrides
/// the doc comment. The function stays an ordinary function that unit tests can call.
#[proc_macro_attribute]
pub fn tool(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    match tool::expand(attr.into(), item.clone()) {
        Ok(out) => out.into(),
        // Keep the item so that the only error is ours (no "unused import" or "cannot find" after it).
        Err(error) => {
            let mut out = error.into_compile_error();
            out.extend(item);
            out.into()
        }
    }
}

/// Makes the crate a plugin whose tools are the listed `#[tool]` functions: `plugin!(add, math::subtract);`.
///
/// Defines `pub struct Plugin` implementing `pipecat_plugin_sdk::PluginTools` and, when compiled to wasm,
/// exports it as the WIT `tools` interface. Use it once per crate.
#[proc_macro]
pub fn plugin(input: TokenStream) -> TokenStream {
    plugin::expand(input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
