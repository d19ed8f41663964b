//! `#[tool]`: validates a tool function and generates its describer.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, LitStr, ReturnType, Type};

/// Options given in `#[tool(...)]`.
#[derive(Default)]
struct Options {
    name: Option<LitStr>,
    description: Option<LitStr>,
}

impl Options {
    fn parse(attr: TokenStream) -> syn::Result<Self> {
        let mut options = Self::default();
        if attr.is_empty() {
            return Ok(options);
        }
        let parser = syn::meta::parser(|meta| {
            if meta.path.is_ident("name") {
                options.name = Some(meta.value()?.parse()?);
                Ok(())
            } else if meta.path.is_ident("description") {
                options.description = Some(meta.value()?.parse()?);
                Ok(())
            } else {
                Err(meta
                    .error("unknown option: expected `name = \"...\"` or `description = \"...\"`"))
            }
        });
        syn::parse::Parser::parse2(parser, attr)?;
        Ok(options)
    }
}

/// Expands `#[tool(attr)] item`.
pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let options = Options::parse(attr)?;
    let func: ItemFn = syn::parse2(item.clone()).map_err(|_| {
        syn::Error::new_spanned(
            &item,
            "`#[tool]` goes on a function: `fn name(args: Args) -> Result<T, ToolError>`",
        )
    })?;
    let sig = &func.sig;
    if let Some(token) = &sig.asyncness {
        return Err(syn::Error::new_spanned(
            token,
            "a tool cannot be `async`: tool calls are synchronous",
        ));
    }
    if let Some(token) = &sig.unsafety {
        return Err(syn::Error::new_spanned(token, "a tool cannot be `unsafe`"));
    }
    if let Some(abi) = &sig.abi {
        return Err(syn::Error::new_spanned(
            abi,
            "a tool is a plain Rust function, without `extern`",
        ));
    }
    if let Some(token) = &sig.constness {
        return Err(syn::Error::new_spanned(token, "a tool cannot be `const`"));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(syn::Error::new_spanned(
            &sig.generics,
            "a tool cannot be generic: name concrete types",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        return Err(syn::Error::new_spanned(
            variadic,
            "a tool cannot be variadic",
        ));
    }
    let arg_ty = argument_type(sig)?;
    check_return(sig)?;

    let name = match &options.name {
        Some(lit) => lit.value(),
        None => {
            let ident = sig.ident.to_string();
            ident.strip_prefix("r#").unwrap_or(&ident).to_owned()
        }
    };
    if let Err(why) = check_name(&name) {
        return Err(match &options.name {
            Some(lit) => syn::Error::new_spanned(lit, why),
            None => syn::Error::new_spanned(
                &sig.ident,
                format!("{why}; rename it with `#[tool(name = \"...\")]`"),
            ),
        });
    }
    let description = match &options.description {
        Some(lit) => lit.value(),
        None => doc_comment(&func.attrs),
    };
    if description.trim().is_empty() {
        return Err(syn::Error::new_spanned(
            &sig.ident,
            "a tool needs a description: write a doc comment (`/// What it does.`) or `#[tool(description = \"...\")]`",
        ));
    }

    let vis = &func.vis;
    let ident = &sig.ident;
    let schema =
        quote_spanned!(arg_ty.span()=> ::pipecat_plugin_sdk::__private::schema_of::<#arg_ty>);
    let call = quote_spanned!(sig.output.span()=> ::pipecat_plugin_sdk::__private::invoke(arguments, #ident));
    // A braced struct lives only in the type namespace, so it can share the function's name: importing the
    // function (`use tools::add;`) imports its description too, and `plugin!(add)` finds it by that name.
    Ok(quote! {
        #func

        #[doc(hidden)]
        #[allow(non_camel_case_types, dead_code)]
        #vis struct #ident {}

        impl ::pipecat_plugin_sdk::__private::Describe for #ident {
            fn tool() -> ::pipecat_plugin_sdk::Tool {
                ::pipecat_plugin_sdk::Tool {
                    name: #name,
                    description: #description,
                    schema: #schema,
                    call: |arguments: &str| #call,
                }
            }
        }
    })
}

/// The type of the single, typed argument.
fn argument_type(sig: &syn::Signature) -> syn::Result<&Type> {
    let mut inputs = sig.inputs.iter();
    let (Some(first), None) = (inputs.next(), inputs.next()) else {
        let what = if sig.inputs.is_empty() {
            "no arguments"
        } else {
            "more than one argument"
        };
        let at: &dyn quote::ToTokens = if sig.inputs.is_empty() {
            &sig.ident
        } else {
            &sig.inputs
        };
        return Err(syn::Error::new_spanned(
            at,
            format!(
                "a tool takes exactly one argument, a `Deserialize + JsonSchema` struct, but this has {what}"
            ),
        ));
    };
    match first {
        FnArg::Typed(pat) => Ok(&pat.ty),
        FnArg::Receiver(receiver) => Err(syn::Error::new_spanned(
            receiver,
            "a tool is a free function, without `self`",
        )),
    }
}

/// The return type must be spelled `Result<...>`.
fn check_return(sig: &syn::Signature) -> syn::Result<()> {
    let ty = match &sig.output {
        ReturnType::Type(_, ty) => ty,
        ReturnType::Default => {
            return Err(syn::Error::new_spanned(
                &sig.ident,
                "a tool returns `Result<impl Serialize, ToolError>`; add a return type",
            ));
        }
    };
    let is_result = match &**ty {
        Type::Path(path) => path
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == "Result"),
        _ => false,
    };
    if is_result {
        Ok(())
    } else {
        Err(syn::Error::new_spanned(
            ty,
            "a tool returns `Result<impl Serialize, ToolError>`",
        ))
    }
}

/// Tool names are `[a-z0-9_-]{1,64}`.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err(format!("tool name `{name}` must have 1 to 64 characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(format!(
            "tool name `{name}` may use only `a-z`, `0-9`, `_` and `-`"
        ));
    }
    Ok(())
}

/// The text of the `///` comments, one space of indentation removed per line.
fn doc_comment(attrs: &[syn::Attribute]) -> String {
    let mut lines = Vec::new();
    for attr in attrs {
        if !attr.path().is_ident("doc") {
            continue;
        }
        if let syn::Meta::NameValue(nv) = &attr.meta
            && let syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) = &nv.value
        {
            let line = s.value();
            lines.push(
                line.strip_prefix(' ')
                    .unwrap_or(&line)
                    .trim_end()
                    .to_owned(),
            );
        }
    }
    lines.join("\n").trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(attr: TokenStream, item: TokenStream) -> String {
        match expand(attr, item) {
            Ok(out) => panic!("expected an error, got {out}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn generates_a_describer_with_name_and_doc() {
        let out = expand(
            quote!(),
            quote! {
                /// Adds two numbers.
                ///
                /// Exactly.
                pub fn add(args: Args) -> Result<f64, ToolError> { Ok(args.a + args.b) }
            },
        )
        .unwrap()
        .to_string();
        assert!(out.contains("pub struct add { }"), "{out}");
        assert!(out.contains("Describe for add"), "{out}");
        assert!(out.contains(r#"name : "add""#), "{out}");
        assert!(
            out.contains(r#"description : "Adds two numbers.\n\nExactly.""#),
            "{out}"
        );
        assert!(out.contains("schema_of :: < Args >"), "{out}");
    }

    #[test]
    fn name_and_description_can_be_given() {
        let out = expand(
            quote!(name = "say-hi", description = "Says hi."),
            quote! {
                fn greet(a: A) -> Result<String, ToolError> { todo!() }
            },
        )
        .unwrap()
        .to_string();
        assert!(out.contains(r#"name : "say-hi""#), "{out}");
        assert!(out.contains(r#"description : "Says hi.""#), "{out}");
    }

    #[test]
    fn rejects_non_functions() {
        let e = error_of(
            quote!(),
            quote!(
                struct Foo;
            ),
        );
        assert!(e.contains("goes on a function"), "{e}");
    }

    #[test]
    fn rejects_wrong_arity() {
        assert!(
            error_of(
                quote!(),
                quote!(
                    /// D
                    fn f() -> Result<(), E> {}
                )
            )
            .contains("no arguments")
        );
        assert!(
            error_of(
                quote!(),
                quote!(
                    /// D
                    fn f(a: A, b: B) -> Result<(), E> {}
                )
            )
            .contains("more than one argument")
        );
        assert!(
            error_of(
                quote!(),
                quote!(
                    /// D
                    fn f(&self) -> Result<(), E> {}
                )
            )
            .contains("without `self`")
        );
    }

    #[test]
    fn rejects_async_generic_unsafe_and_const() {
        assert!(
            error_of(
                quote!(),
                quote!(
                    async fn f(a: A) -> Result<(), E> {}
                )
            )
            .contains("async")
        );
        assert!(
            error_of(
                quote!(),
                quote!(
                    fn f<T>(a: T) -> Result<(), E> {}
                )
            )
            .contains("generic")
        );
        assert!(
            error_of(
                quote!(),
                quote!(
                    unsafe fn f(a: A) -> Result<(), E> {}
                )
            )
            .contains("unsafe")
        );
        assert!(
            error_of(
                quote!(),
                quote!(
                    const fn f(a: A) -> Result<(), E> {}
                )
            )
            .contains("const")
        );
    }

    #[test]
    fn rejects_non_result_returns() {
        assert!(
            error_of(
                quote!(),
                quote!(
                    /// D
                    fn f(a: A) -> String {}
                )
            )
            .contains("returns `Result")
        );
        assert!(
            error_of(
                quote!(),
                quote!(
                    /// D
                    fn f(a: A) {}
                )
            )
            .contains("add a return type")
        );
    }

    #[test]
    fn rejects_bad_names_options_and_missing_docs() {
        assert!(
            error_of(
                quote!(name = "Bad Name"),
                quote!(
                    /// D
                    fn f(a: A) -> Result<(), E> {}
                )
            )
            .contains("may use only")
        );
        assert!(
            error_of(
                quote!(color = "red"),
                quote!(
                    /// D
                    fn f(a: A) -> Result<(), E> {}
                )
            )
            .contains("unknown option")
        );
        assert!(
            error_of(
                quote!(),
                quote!(
                    fn f(a: A) -> Result<(), E> {}
                )
            )
            .contains("needs a description")
        );
    }
}
