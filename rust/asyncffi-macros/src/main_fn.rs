//! `#[asyncffi::main]`: an `async fn main` run with Python by `asyncffi::python::run`.

use proc_macro2::TokenStream as Tokens;
use quote::{quote, quote_spanned};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, ItemFn, Lit, MetaNameValue, ReturnType, Token};

/// The `fn main` that runs `func` (an `async fn main`, returning `()` or
/// `asyncffi::Result<()>`) with the options in `attr`: `runtime = "tokio" | "async-std" | "loop"`,
/// `loop_factory = "uvloop"` (or `"module:function"`), `python = "path"`, `path = "dir"` (these three take any expression of their type).
pub(crate) fn generate(attr: Tokens, func: ItemFn) -> syn::Result<Tokens> {
    if func.sig.asyncness.is_none() || func.sig.ident != "main" || !func.sig.inputs.is_empty() {
        return Err(syn::Error::new(
            func.sig.span(),
            "#[asyncffi::main] goes on `async fn main()`",
        ));
    }
    let mut config = quote! { ::asyncffi::python::Config::new() };
    let options = Punctuated::<MetaNameValue, Token![,]>::parse_terminated.parse2(attr)?;
    for option in options {
        let name = option
            .path
            .get_ident()
            .map(|i| i.to_string())
            .unwrap_or_default();
        let value = &option.value;
        config = match name.as_str() {
            "runtime" => {
                let Expr::Lit(ExprLit {
                    lit: Lit::Str(value),
                    ..
                }) = &option.value
                else {
                    return Err(syn::Error::new(option.value.span(), "expected a string"));
                };
                let runtime = match value.value().as_str() {
                    "tokio" => quote! { ::asyncffi::Runtime::Tokio },
                    "async-std" => quote! { ::asyncffi::Runtime::AsyncStd },
                    "loop" => quote! { ::asyncffi::Runtime::Loop },
                    _ => {
                        return Err(syn::Error::new(
                            value.span(),
                            "runtime must be \"tokio\", \"async-std\" or \"loop\"",
                        ))
                    }
                };
                quote! { #config.runtime(#runtime) }
            }
            "loop_factory" => quote! { #config.loop_factory(#value) },
            "python" => quote! { #config.python(#value) },
            "path" => quote! { #config.path(#value) },
            _ => {
                return Err(syn::Error::new(
                    option.path.span(),
                    "unknown option: expected runtime, loop_factory, python or path",
                ))
            }
        };
    }
    let body = &func.block;
    let attrs = &func.attrs;
    let output = match &func.sig.output {
        ReturnType::Default => quote! { () },
        ReturnType::Type(_, ty) => quote! { #ty },
    };
    let span = func.sig.span();
    Ok(quote_spanned! {span=>
        #(#attrs)*
        fn main() {
            async fn __asyncffi_main() -> #output #body
            let status = ::asyncffi::python::run(#config, async {
                ::asyncffi::python::MainResult::into_result(__asyncffi_main().await)
            });
            ::std::process::exit(status)
        }
    })
}
