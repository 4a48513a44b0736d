//! Reading types as they are written: how a parameter travels (its C shape), what a function
//! returns (a `Result`, a stream), doc comments and the crate's name.

use proc_macro2::TokenStream as Tokens;
use quote::quote;
use syn::spanned::Spanned;
use syn::{
    Attribute, Expr, GenericArgument, Lit, Meta, PathArguments, ReturnType, Signature, Type,
    TypeParamBound,
};

/// How one parameter crosses the C ABI.
pub(crate) enum Shape {
    Scalar,
    Handle(Box<Type>),
    Callable,
    Aiter,
    Buffer,
    /// An `asyncffi::Value`: tagged, scalars without the codec.
    Tagged,
}

/// The parameter types that travel as one C scalar, recognised by name: a proc macro sees
/// tokens, not types, so an alias (`type Id = u64;`) is not one of them and travels as a
/// buffer (the C signature must be chosen here, before types are known).
pub(crate) const SCALARS: &[&str] = &[
    "i8", "i16", "i32", "i64", "isize", "u8", "u16", "u32", "u64", "usize", "f32", "f64", "bool",
];

pub(crate) fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last(),
        Type::Group(g) => last_segment(&g.elem),
        Type::Paren(p) => last_segment(&p.elem),
        _ => None,
    }
}

/// The generic type arguments of `ty`'s last segment.
pub(crate) fn type_args(ty: &Type) -> Vec<&Type> {
    let Some(seg) = last_segment(ty) else {
        return Vec::new();
    };
    let PathArguments::AngleBracketed(args) = &seg.arguments else {
        return Vec::new();
    };
    args.args
        .iter()
        .filter_map(|a| match a {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        })
        .collect()
}

/// Whether `ty` is a plain path (no generics) whose segments before the last are one of
/// `prefixes`: `Value` or `asyncffi::Value`, not `serde_json::Value` (which crosses by serde).
pub(crate) fn is_path(ty: &Type, prefixes: &[&[&str]]) -> bool {
    let Type::Path(p) = ty else {
        return false;
    };
    if p.qself.is_some() || p.path.segments.iter().any(|s| !s.arguments.is_none()) {
        return false;
    }
    let segments: Vec<String> = p
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    let head = &segments[..segments.len() - 1];
    prefixes.iter().any(|prefix| head == *prefix)
}

/// Whether `ty` is a primitive integer type.
pub(crate) fn is_integer(ty: &Type) -> bool {
    last_segment(ty).is_some_and(|s| {
        s.arguments.is_none()
            && SCALARS.contains(&s.ident.to_string().as_str())
            && !["f32", "f64", "bool"].contains(&s.ident.to_string().as_str())
    })
}

pub(crate) fn is_named(ty: &Type, name: &str) -> bool {
    last_segment(ty).is_some_and(|s| s.ident == name)
}

pub(crate) fn shape(ty: &Type) -> syn::Result<Shape> {
    match ty {
        Type::Reference(r) => {
            return Err(syn::Error::new(
                r.span(),
                format!(
                    "parameter type `{}` borrows: exported functions take owned values \
                     (String for &str, Vec<T> for &[T], Arc<T> for an object)",
                    quote!(#ty)
                ),
            ))
        }
        Type::ImplTrait(_) => {
            return Err(syn::Error::new(
                ty.span(),
                "`impl Trait` cannot be a parameter of an exported function",
            ))
        }
        _ => {}
    }
    let Some(seg) = last_segment(ty) else {
        return Ok(Shape::Buffer);
    };
    let name = seg.ident.to_string();
    if seg.arguments.is_none() && SCALARS.contains(&name.as_str()) {
        return Ok(Shape::Scalar);
    }
    Ok(match name.as_str() {
        "Arc" => match type_args(ty).as_slice() {
            [inner] => Shape::Handle(Box::new((*inner).clone())),
            _ => Shape::Buffer,
        },
        "PyCallable" => Shape::Callable,
        "Duration" if is_path(ty, &[&[], &["std", "time"], &["core", "time"], &["time"]]) => {
            Shape::Scalar
        }
        "Runtime" if is_path(ty, &[&[], &["asyncffi"]]) => Shape::Scalar,
        "Value" if is_path(ty, &[&[], &["asyncffi"]]) => Shape::Tagged,
        "PyStream" => Shape::Aiter,
        _ => Shape::Buffer,
    })
}

/// Replaces `Self` in `ty` by `with`.
pub(crate) fn replace_self(ty: &Type, with: &Type) -> Type {
    let tokens = quote!(#ty);
    let replaced: Tokens = replace_self_tokens(tokens, with);
    syn::parse2(replaced).unwrap_or_else(|_| ty.clone())
}

pub(crate) fn replace_self_tokens(tokens: Tokens, with: &Type) -> Tokens {
    tokens
        .into_iter()
        .map(|tt| match tt {
            proc_macro2::TokenTree::Ident(i) if i == "Self" => quote!(#with),
            proc_macro2::TokenTree::Group(g) => {
                let mut group =
                    proc_macro2::Group::new(g.delimiter(), replace_self_tokens(g.stream(), with));
                group.set_span(g.span());
                quote!(#group)
            }
            other => quote!(#other),
        })
        .collect()
}

/// What the function's value is: the Ok type of a `Result`, a stream's item.
pub(crate) struct Output {
    /// The value's type (`()` when there is none).
    pub(crate) value: Type,
    /// It returns a `Result`.
    pub(crate) fallible: bool,
    /// It returns `impl Stream<Item = ...>`.
    pub(crate) stream: bool,
}

pub(crate) fn split_result(ty: &Type) -> (Type, bool) {
    if is_named(ty, "Result") {
        if let Some(ok) = type_args(ty).first() {
            return ((*ok).clone(), true);
        }
    }
    (ty.clone(), false)
}

pub(crate) fn output(sig: &Signature) -> syn::Result<Output> {
    let ty: Type = match &sig.output {
        ReturnType::Default => syn::parse_quote!(()),
        ReturnType::Type(_, ty) => (**ty).clone(),
    };
    if let Type::ImplTrait(imp) = &ty {
        for bound in &imp.bounds {
            let TypeParamBound::Trait(t) = bound else {
                continue;
            };
            let Some(seg) = t.path.segments.last() else {
                continue;
            };
            if seg.ident != "Stream" {
                continue;
            }
            if let PathArguments::AngleBracketed(args) = &seg.arguments {
                for arg in &args.args {
                    if let GenericArgument::AssocType(assoc) = arg {
                        if assoc.ident == "Item" {
                            let (value, fallible) = split_result(&assoc.ty);
                            return Ok(Output {
                                value,
                                fallible,
                                stream: true,
                            });
                        }
                    }
                }
            }
        }
        return Err(syn::Error::new(
            ty.span(),
            "an exported function returning `impl Trait` must return `impl Stream<Item = T>`",
        ));
    }
    let (value, fallible) = split_result(&ty);
    Ok(Output {
        value,
        fallible,
        stream: false,
    })
}

pub(crate) fn doc_of(attrs: &[Attribute]) -> String {
    let mut lines = Vec::new();
    for attr in attrs {
        if !attr.path().is_ident("doc") {
            continue;
        }
        if let Meta::NameValue(nv) = &attr.meta {
            if let Expr::Lit(lit) = &nv.value {
                if let Lit::Str(s) = &lit.lit {
                    let line = s.value();
                    lines.push(line.strip_prefix(' ').unwrap_or(&line).to_owned());
                }
            }
        }
    }
    lines.join("\n")
}

pub(crate) fn crate_name() -> String {
    std::env::var("CARGO_CRATE_NAME").unwrap_or_else(|_| "affi".to_owned())
}
