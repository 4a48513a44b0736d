//! `#[asyncffi::object]`: the shims of an impl block's constructor and methods, the object's
//! conversions and its manifest entry.

use proc_macro2::TokenStream as Tokens;
use quote::{format_ident, quote};
use syn::spanned::Spanned;
use syn::{Attribute, FnArg, ImplItem, ItemImpl, Meta};

use crate::export::{Export, Owner, Role};
use crate::options::Options;
use crate::types::{crate_name, doc_of, last_segment};

pub(crate) fn object_shims(block: &mut ItemImpl, options: &Options) -> syn::Result<Tokens> {
    if block.trait_.is_some() || !block.generics.params.is_empty() {
        return Err(syn::Error::new(
            block.span(),
            "#[asyncffi::object] goes on a plain, non-generic `impl Type { ... }` block",
        ));
    }
    let self_ty = (*block.self_ty).clone();
    let rust_name = last_segment(&self_ty)
        .map(|s| s.ident.to_string())
        .ok_or_else(|| syn::Error::new(self_ty.span(), "expected a named type"))?;
    let name = options.name.clone().unwrap_or_else(|| rust_name.clone());
    let doc = doc_of(&block.attrs);
    let mut shims = Vec::new();
    let mut constructors = 0;
    for item in &mut block.items {
        let ImplItem::Fn(f) = item else {
            continue;
        };
        let marked =
            |a: &Attribute, name: &str| a.path().segments.last().is_some_and(|s| s.ident == name);
        let is_constructor = f.attrs.iter().any(|a| marked(a, "constructor"));
        let skip = f.attrs.iter().any(|a| marked(a, "skip"));
        // `#[asyncffi::export(...)]` on a method sets its own options.
        let mut fn_options = Options {
            runtime: options.runtime.clone(),
            name: None,
            error_kind: options.error_kind.clone(),
            scalar: Vec::new(),
        };
        for attr in f.attrs.iter().filter(|a| marked(a, "export")) {
            let own = match &attr.meta {
                Meta::List(list) => Options::parse(list.tokens.clone())?,
                _ => Options::default(),
            };
            fn_options.runtime = own.runtime.or(fn_options.runtime);
            fn_options.name = own.name;
            fn_options.error_kind = own.error_kind.or(fn_options.error_kind);
            fn_options.scalar = own.scalar;
        }
        f.attrs
            .retain(|a| !marked(a, "constructor") && !marked(a, "export") && !marked(a, "skip"));
        if skip {
            crate::options::strip_param_options(&mut f.sig);
            continue;
        }
        let receiver = f.sig.inputs.first().and_then(|a| match a {
            FnArg::Receiver(r) => Some(r),
            _ => None,
        });
        let role = match (is_constructor, receiver) {
            (true, None) => {
                constructors += 1;
                Role::Constructor
            }
            (true, Some(r)) => {
                return Err(syn::Error::new(r.span(), "a constructor takes no `self`"))
            }
            (false, Some(r)) => {
                if r.reference.is_none() || r.mutability.is_some() {
                    return Err(syn::Error::new(
                        r.span(),
                        "exported methods take `&self` (objects are shared: use interior \
                         mutability)",
                    ));
                }
                Role::Method
            }
            (false, None) => Role::Static,
        };
        let owner = Owner {
            self_ty: &self_ty,
            name: name.clone(),
            role,
        };
        let shim = Export::new(&f.sig, &f.attrs, &fn_options, Some(owner))?.generate()?;
        shims.push(shim);
        crate::options::strip_param_options(&mut f.sig);
    }
    if constructors > 1 {
        return Err(syn::Error::new(
            block.span(),
            "an object has at most one #[asyncffi::constructor]",
        ));
    }
    let entry = format_ident!("__AFFI_OBJECT_{}", name.to_uppercase());
    let krate = crate_name();
    Ok(quote! {
        impl ::asyncffi::convert::ExportedObject for #self_ty {
            const NAME: &'static str = #name;
        }

        impl ::asyncffi::IntoPython for #self_ty {
            const TYPE: ::asyncffi::convert::TypeDesc = ::asyncffi::convert::TypeDesc::Object(#name);

            fn into_value(self) -> ::std::result::Result<::asyncffi::Value, ::asyncffi::Error> {
                Ok(::asyncffi::Value::Object(::std::sync::Arc::new(self)))
            }
        }

        #[::asyncffi::__private::linkme::distributed_slice(::asyncffi::__private::OBJECTS)]
        #[linkme(crate = ::asyncffi::__private::linkme)]
        #[allow(non_upper_case_globals)]
        static #entry: ::asyncffi::__private::Object = ::asyncffi::__private::Object {
            name: #name,
            rust: #rust_name,
            krate: #krate,
            doc: #doc,
            type_id: ::std::any::TypeId::of::<#self_ty>,
        };

        #(#shims)*
    })
}
