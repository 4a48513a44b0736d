//! The options of `#[asyncffi::export(...)]` and `#[asyncffi::object(...)]`.

use proc_macro2::{Span, TokenStream as Tokens};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, Lit, Meta, Token};

#[derive(Default)]
pub(crate) struct Options {
    pub(crate) runtime: Option<(String, Span)>,
    pub(crate) name: Option<String>,
    pub(crate) error_kind: Option<String>,
    /// Parameters whose type is a scalar under another name (`type Id = u64;`): they travel
    /// as one C scalar, which the type's `asyncffi::convert::Scalar` impl must allow.
    pub(crate) scalar: Vec<(String, Span)>,
}

impl Options {
    pub(crate) fn parse(attr: Tokens) -> syn::Result<Options> {
        let mut options = Options::default();
        let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(attr)?;
        for meta in metas {
            let Meta::NameValue(nv) = &meta else {
                return Err(syn::Error::new(meta.span(), "expected `key = \"value\"`"));
            };
            let value = match &nv.value {
                Expr::Lit(lit) => match &lit.lit {
                    Lit::Str(s) => s.value(),
                    _ => return Err(syn::Error::new(nv.value.span(), "expected a string")),
                },
                _ => return Err(syn::Error::new(nv.value.span(), "expected a string")),
            };
            let key = nv
                .path
                .get_ident()
                .map(|i| i.to_string())
                .unwrap_or_default();
            match key.as_str() {
                "runtime" => {
                    // Besides the built-ins, a name the library registers with
                    // `asyncffi::register_runtime!` (checked on the first call).
                    if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c == '"') {
                        return Err(syn::Error::new(
                            nv.value.span(),
                            "runtime must be \"tokio\", \"async-std\", \"loop\" or the name \
                             of a runtime registered with asyncffi::register_runtime!",
                        ));
                    }
                    options.runtime = Some((value, nv.value.span()));
                }
                "name" => options.name = Some(value),
                "error_kind" => options.error_kind = Some(value),
                "scalar" => options.scalar.extend(
                    value
                        .split(',')
                        .map(|n| (n.trim().to_owned(), nv.value.span()))
                        .filter(|(n, _)| !n.is_empty()),
                ),
                _ => {
                    return Err(syn::Error::new(
                        nv.path.span(),
                        "unknown option: expected `runtime`, `name`, `error_kind` or `scalar`",
                    ))
                }
            }
        }
        Ok(options)
    }
}

/// The options of one parameter: `#[asyncffi(default = <literal>, keyword, min = N)]`.
#[derive(Default)]
pub(crate) struct ParamOptions {
    /// The default, as JSON text.
    pub(crate) default: Option<String>,
    /// Keyword-only in Python.
    pub(crate) keyword: bool,
    /// The smallest int accepted (below it: `ValueError`).
    pub(crate) min: Option<i64>,
}

/// Whether `attr` is a parameter option (`#[asyncffi(...)]`), which the macros remove.
pub(crate) fn is_param_option(attr: &syn::Attribute) -> bool {
    attr.path().is_ident("asyncffi")
}

impl ParamOptions {
    pub(crate) fn parse(attrs: &[syn::Attribute]) -> syn::Result<ParamOptions> {
        let mut options = ParamOptions::default();
        for attr in attrs.iter().filter(|a| is_param_option(a)) {
            let Meta::List(list) = &attr.meta else {
                return Err(syn::Error::new(
                    attr.span(),
                    "expected #[asyncffi(default = ..., keyword, min = ...)]",
                ));
            };
            let metas =
                Punctuated::<Meta, Token![,]>::parse_terminated.parse2(list.tokens.clone())?;
            for meta in metas {
                match &meta {
                    Meta::Path(p) if p.is_ident("keyword") => options.keyword = true,
                    Meta::NameValue(nv) if nv.path.is_ident("default") => {
                        options.default = Some(json_literal(&nv.value)?);
                    }
                    Meta::NameValue(nv) if nv.path.is_ident("min") => {
                        options.min = Some(int_literal(&nv.value)?);
                    }
                    _ => {
                        return Err(syn::Error::new(
                            meta.span(),
                            "unknown parameter option: expected `default = <literal>`, \
                             `keyword` or `min = <int>`",
                        ))
                    }
                }
            }
        }
        Ok(options)
    }
}

fn int_literal(expr: &Expr) -> syn::Result<i64> {
    match expr {
        Expr::Lit(lit) => match &lit.lit {
            Lit::Int(i) => i.base10_parse(),
            _ => Err(syn::Error::new(expr.span(), "expected an integer")),
        },
        Expr::Unary(u) if matches!(u.op, syn::UnOp::Neg(_)) => Ok(-int_literal(&u.expr)?),
        _ => Err(syn::Error::new(expr.span(), "expected an integer")),
    }
}

/// A literal default as JSON text: a string, an int, a float or a bool.
fn json_literal(expr: &Expr) -> syn::Result<String> {
    match expr {
        Expr::Lit(lit) => match &lit.lit {
            Lit::Str(s) => Ok(json_string(&s.value())),
            Lit::Int(i) => Ok(i.base10_parse::<i64>()?.to_string()),
            Lit::Float(f) => {
                let x: f64 = f.base10_parse()?;
                if !x.is_finite() {
                    return Err(syn::Error::new(f.span(), "a default must be finite"));
                }
                Ok(format!("{x:?}"))
            }
            Lit::Bool(b) => Ok(b.value.to_string()),
            _ => Err(syn::Error::new(
                expr.span(),
                "a default is a string, int, float or bool literal",
            )),
        },
        Expr::Unary(u) if matches!(u.op, syn::UnOp::Neg(_)) => {
            let inner = json_literal(&u.expr)?;
            if inner.starts_with('"') || inner == "true" || inner == "false" {
                return Err(syn::Error::new(expr.span(), "only a number can be negated"));
            }
            Ok(format!("-{inner}"))
        }
        _ => Err(syn::Error::new(
            expr.span(),
            "a default is a string, int, float or bool literal",
        )),
    }
}

pub(crate) fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Removes the parameter options from `sig` (they are the macros' alone).
pub(crate) fn strip_param_options(sig: &mut syn::Signature) {
    for input in &mut sig.inputs {
        if let syn::FnArg::Typed(pt) = input {
            pt.attrs.retain(|a| !is_param_option(a));
        }
    }
}
