//! `plugin!(a, b, …)`: the list of tools a crate exports.

use proc_macro2::TokenStream;
use quote::quote;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Path, Token};

/// Expands `plugin!(paths…)`.
pub(crate) fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let paths = Punctuated::<Path, Token![,]>::parse_terminated.parse2(input.clone())?;
    if paths.is_empty() {
        return Err(syn::Error::new_spanned(
            input,
            "`plugin!` needs at least one tool: `plugin!(my_tool, other_tool);`",
        ));
    }
    let mut seen: Vec<String> = Vec::new();
    let mut describers = Vec::new();
    for path in &paths {
        let key = quote!(#path).to_string();
        if seen.contains(&key) {
            return Err(syn::Error::new_spanned(path, "this tool is listed twice"));
        }
        seen.push(key);
        check_path(path)?;
        describers.push(quote!(<#path as ::pipecat_plugin_sdk::__private::Describe>::tool()));
    }
    Ok(quote! {
        /// The plugin's tools; exported to the host as the WIT `tools` interface.
        pub struct Plugin;

        impl ::pipecat_plugin_sdk::PluginTools for Plugin {
            fn tools() -> ::std::vec::Vec<::pipecat_plugin_sdk::Tool> {
                ::std::vec![#(#describers),*]
            }
        }

        #[cfg(target_arch = "wasm32")]
        ::pipecat_plugin_sdk::bindings::export!(Plugin with_types_in ::pipecat_plugin_sdk::bindings);
    })
}

/// A tool is named by a plain path, without generic arguments.
fn check_path(path: &Path) -> syn::Result<()> {
    if path.segments.iter().any(|s| !s.arguments.is_none()) {
        return Err(syn::Error::new_spanned(
            path,
            "a tool is named without generic arguments",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_describers_of_each_tool() {
        let out = expand(quote!(add, math::sub,)).unwrap().to_string();
        assert!(
            out.contains("< add as :: pipecat_plugin_sdk :: __private :: Describe > :: tool ()"),
            "{out}"
        );
        assert!(out.contains("< math :: sub as"), "{out}");
        assert!(out.contains("export !"), "{out}");
    }

    #[test]
    fn rejects_an_empty_list() {
        let err = expand(quote!()).unwrap_err();
        assert!(err.to_string().contains("at least one tool"), "{err}");
    }

    #[test]
    fn rejects_a_tool_listed_twice() {
        let err = expand(quote!(add, add)).unwrap_err();
        assert!(err.to_string().contains("listed twice"), "{err}");
    }

    #[test]
    fn rejects_something_that_is_not_a_path() {
        assert!(expand(quote!("add")).is_err());
    }
}
