//! `#[derive(asyncffi::Record)]`: a serde struct or enum described field by field in the
//! manifest, so its stubs are a `TypedDict` (a struct) or a union (an enum) rather than any
//! dict. The derive writes nothing but the manifest entry: the type still crosses by serde.
//!
//! Only shapes the manifest can state are accepted: no generics, and no serde attribute that
//! changes what Python sees (renames, tagging, flattening, skipping, custom (de)serializers);
//! each is a compile error naming the attribute, so the stubs never lie about the data.

use proc_macro2::TokenStream as Tokens;
use quote::{format_ident, quote};
use syn::spanned::Spanned;
use syn::{Attribute, Data, DeriveInput, Fields, Type};

use crate::types::{crate_name, doc_of};

/// The serde attributes that leave the shape Python sees as the Rust declaration says.
const SHAPE_KEEPING: &[&str] = &[
    "default",
    "deny_unknown_fields",
    "bound",
    "crate",
    "expecting",
    "alias",
];

/// Refuses the `#[serde(...)]` attributes that change the shape.
fn check_serde(attrs: &[Attribute]) -> syn::Result<()> {
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        attr.parse_nested_meta(|meta| {
            let name = meta
                .path
                .get_ident()
                .map(ToString::to_string)
                .unwrap_or_default();
            if !SHAPE_KEEPING.contains(&name.as_str()) {
                return Err(meta.error(format!(
                    "#[derive(asyncffi::Record)] does not support `#[serde({name})]`: it \
                     changes the data Python sees, which the manifest could not describe"
                )));
            }
            if meta.input.peek(syn::Token![=]) {
                meta.value()?.parse::<syn::Expr>()?;
            } else if !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
                meta.input.parse::<proc_macro2::TokenTree>()?;
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// A `fn() -> TypeDesc` describing `ty`.
fn describe(ty: &Type) -> Tokens {
    quote! {{
        fn __affi_ty() -> ::asyncffi::convert::TypeDesc {
            #[allow(unused_imports)]
            use ::asyncffi::__private::{DescribeFrom as _, DescribeInto as _, DescribeSerde as _};
            (&&&::asyncffi::__private::Describe::<#ty>::new()).desc()
        }
        __affi_ty
    }}
}

/// The manifest fields of named `fields`.
fn named_fields(fields: &syn::FieldsNamed) -> syn::Result<Tokens> {
    let mut out = Vec::new();
    for field in &fields.named {
        check_serde(&field.attrs)?;
        let name = field
            .ident
            .as_ref()
            .map(|i| i.to_string())
            .unwrap_or_default();
        let name = name.strip_prefix("r#").unwrap_or(&name).to_owned();
        let ty = describe(&field.ty);
        let doc = doc_of(&field.attrs);
        out.push(quote! {
            ::asyncffi::__private::Field { name: #name, ty: #ty, doc: #doc }
        });
    }
    Ok(quote!(&[#(#out),*]))
}

pub(crate) fn derive(input: DeriveInput) -> syn::Result<Tokens> {
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new(
            input.generics.span(),
            "#[derive(asyncffi::Record)] takes no generic types: the manifest describes one \
             concrete type",
        ));
    }
    check_serde(&input.attrs)?;
    let ident = &input.ident;
    let name = ident.to_string();
    let doc = doc_of(&input.attrs);
    let shape =
        match &input.data {
            Data::Struct(s) => match &s.fields {
                Fields::Named(fields) => {
                    let fields = named_fields(fields)?;
                    quote!(::asyncffi::__private::RecordShape::Struct(#fields))
                }
                other => return Err(syn::Error::new(
                    other.span(),
                    "#[derive(asyncffi::Record)] needs named fields (a struct Python sees as a \
                     dict)",
                )),
            },
            Data::Enum(e) => {
                let mut variants = Vec::new();
                for variant in &e.variants {
                    check_serde(&variant.attrs)?;
                    let vname = variant.ident.to_string();
                    let vdoc = doc_of(&variant.attrs);
                    let data = match &variant.fields {
                        Fields::Unit => quote!(::asyncffi::__private::VariantData::Unit),
                        Fields::Unnamed(f) if f.unnamed.len() == 1 => {
                            check_serde(&f.unnamed[0].attrs)?;
                            let ty = describe(&f.unnamed[0].ty);
                            quote!(::asyncffi::__private::VariantData::Newtype(#ty))
                        }
                        Fields::Unnamed(f) => {
                            let mut items = Vec::new();
                            for field in &f.unnamed {
                                check_serde(&field.attrs)?;
                                items.push(describe(&field.ty));
                            }
                            quote!(::asyncffi::__private::VariantData::Tuple(&[#(#items),*]))
                        }
                        Fields::Named(f) => {
                            let fields = named_fields(f)?;
                            quote!(::asyncffi::__private::VariantData::Struct(#fields))
                        }
                    };
                    variants.push(quote! {
                        ::asyncffi::__private::Variant { name: #vname, data: #data, doc: #vdoc }
                    });
                }
                quote!(::asyncffi::__private::RecordShape::Enum(&[#(#variants),*]))
            }
            Data::Union(u) => {
                return Err(syn::Error::new(
                    u.union_token.span(),
                    "#[derive(asyncffi::Record)] is for structs and enums",
                ))
            }
        };
    let entry = format_ident!("__AFFI_RECORD_{}", name.to_uppercase());
    let krate = crate_name();
    Ok(quote! {
        #[::asyncffi::__private::linkme::distributed_slice(::asyncffi::__private::RECORDS)]
        #[linkme(crate = ::asyncffi::__private::linkme)]
        #[allow(non_upper_case_globals)]
        static #entry: ::asyncffi::__private::Record = ::asyncffi::__private::Record {
            name: #name,
            rust: ::std::any::type_name::<#ident>,
            krate: #krate,
            doc: #doc,
            shape: #shape,
        };
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(input: DeriveInput) -> String {
        derive(input)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn shape_changing_serde_attributes_and_generics_are_refused() {
        let renamed: DeriveInput = syn::parse_quote! {
            struct A { #[serde(rename = "b")] a: u8 }
        };
        assert!(refusal(renamed).contains("`#[serde(rename)]`"));
        let tagged: DeriveInput = syn::parse_quote! {
            #[serde(tag = "type")]
            enum E { A, B }
        };
        assert!(refusal(tagged).contains("`#[serde(tag)]`"));
        let generic: DeriveInput = syn::parse_quote! { struct G<T> { t: T } };
        assert!(refusal(generic).contains("no generic types"));
        let tuple: DeriveInput = syn::parse_quote! { struct T(u8); };
        assert!(refusal(tuple).contains("named fields"));
    }

    #[test]
    fn shape_keeping_serde_attributes_are_accepted() {
        let ok: DeriveInput = syn::parse_quote! {
            #[serde(deny_unknown_fields, bound = "")]
            struct A { #[serde(default, alias = "b")] a: u8 }
        };
        assert!(derive(ok).is_ok());
    }
}
