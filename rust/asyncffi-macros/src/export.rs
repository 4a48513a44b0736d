//! One exported function: its C shim (argument conversions, the call, the outcome) and its
//! manifest entry.

use proc_macro2::{Span, TokenStream as Tokens};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Attribute, FnArg, Pat, Signature, Type};

use crate::options::{json_string, Options, ParamOptions};
use crate::types::{
    crate_name, doc_of, is_integer, is_named, output, replace_self, shape, Output, Shape,
};

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Role {
    Function,
    Constructor,
    Method,
    Static,
}

pub(crate) struct Parameter {
    ident: syn::Ident,
    name: String,
    ty: Type,
    shape: Shape,
    /// The default, as JSON text.
    default: Option<String>,
    keyword: bool,
    min: Option<i64>,
    /// `asyncffi::Runtime`: the caller's runtime.
    runtime: bool,
    /// `asyncffi::Args`: the rest of the positional arguments.
    rest: bool,
}

/// The impl block an exported method belongs to.
pub(crate) struct Owner<'a> {
    pub(crate) self_ty: &'a Type,
    pub(crate) name: String,
    pub(crate) role: Role,
}

pub(crate) struct Export<'a> {
    sig: &'a Signature,
    python_name: String,
    symbol: String,
    doc: String,
    runtime: (String, Span),
    error_kind: Option<String>,
    params: Vec<Parameter>,
    output: Output,
    owner: Option<Owner<'a>>,
}

impl<'a> Export<'a> {
    pub(crate) fn new(
        sig: &'a Signature,
        attrs: &[Attribute],
        options: &Options,
        owner: Option<Owner<'a>>,
    ) -> syn::Result<Export<'a>> {
        if !sig.generics.params.is_empty() {
            return Err(syn::Error::new(
                sig.generics.span(),
                "an exported function cannot be generic",
            ));
        }
        let mut params = Vec::new();
        for input in &sig.inputs {
            let FnArg::Typed(pt) = input else {
                continue; // `&self`: the handle, added by the shim
            };
            let Pat::Ident(pi) = &*pt.pat else {
                return Err(syn::Error::new(
                    pt.pat.span(),
                    "exported parameters must be plain names",
                ));
            };
            let mut ty = (*pt.ty).clone();
            if let Some(owner) = &owner {
                ty = replace_self(&ty, owner.self_ty);
            }
            let name = pi.ident.to_string();
            let name = name.strip_prefix("r#").unwrap_or(&name).to_owned();
            // `scalar = "id"`: an alias of a scalar type, which the tokens cannot show.
            let shape = if options.scalar.iter().any(|(n, _)| *n == name) {
                Shape::Scalar
            } else {
                shape(&ty)?
            };
            let opts = ParamOptions::parse(&pt.attrs)?;
            let runtime = matches!(shape, Shape::Scalar) && is_named(&ty, "Runtime");
            // The caller's runtime is the keyword `runtime=`, whatever the Rust name.
            let name = if runtime { "runtime".to_owned() } else { name };
            let rest = matches!(shape, Shape::Buffer) && is_named(&ty, "Args");
            if opts.min.is_some() && !is_integer(&ty) {
                return Err(syn::Error::new(
                    pt.span(),
                    format!("parameter `{name}`: `min` is for integer parameters"),
                ));
            }
            if (runtime || rest) && (opts.default.is_some() || opts.keyword) {
                return Err(syn::Error::new(
                    pt.span(),
                    format!("parameter `{name}`: a runtime or `Args` parameter takes no options"),
                ));
            }
            let default = if runtime {
                let r = options.runtime.as_ref().map_or("tokio", |r| r.0.as_str());
                Some(json_string(r))
            } else {
                opts.default
            };
            params.push(Parameter {
                ident: format_ident!("__affi_{}", name),
                name,
                default,
                keyword: opts.keyword || runtime,
                min: opts.min,
                runtime,
                rest,
                shape,
                ty,
            });
        }
        if let Some((unknown, span)) = options
            .scalar
            .iter()
            .find(|(n, _)| !params.iter().any(|p| p.name == *n))
        {
            return Err(syn::Error::new(
                *span,
                format!("`scalar`: the function has no parameter `{unknown}`"),
            ));
        }
        if params.iter().filter(|p| p.runtime).count() > 1 {
            return Err(syn::Error::new(
                sig.inputs.span(),
                "an exported function takes at most one `Runtime` parameter",
            ));
        }
        // `Args` comes last among the positional parameters.
        let positional: Vec<usize> = (0..params.len()).filter(|&i| !params[i].keyword).collect();
        for (n, &i) in positional.iter().enumerate() {
            if params[i].rest && n + 1 != positional.len() {
                return Err(syn::Error::new(
                    params[i].ty.span(),
                    format!(
                        "parameter `{}`: `Args` (the rest of the positional arguments) must be \
                         the last positional parameter",
                        params[i].name
                    ),
                ));
            }
        }
        // A trailing run of positional Option parameters defaults to None.
        for &i in positional.iter().rev() {
            let p = &mut params[i];
            if p.rest {
                continue;
            }
            if !is_named(&p.ty, "Option") {
                break;
            }
            if p.default.is_none() {
                p.default = Some("null".to_owned());
            }
        }
        // As in Python, a positional parameter with a default is followed by others with one.
        let mut defaulted: Option<&str> = None;
        for &i in &positional {
            let p = &params[i];
            match (&p.default, defaulted) {
                (Some(_), _) => defaulted = Some(&p.name),
                (None, Some(before)) if !p.rest => {
                    return Err(syn::Error::new(
                        p.ty.span(),
                        format!(
                            "parameter `{}` follows `{before}`, which has a default: give it \
                             a default or make it keyword-only (#[asyncffi(keyword)])",
                            p.name
                        ),
                    ))
                }
                _ => {}
            }
        }
        let mut output = output(sig)?;
        if let Some(owner) = &owner {
            output.value = replace_self(&output.value, owner.self_ty);
        }
        let fn_name = sig.ident.to_string();
        let fn_name = fn_name.strip_prefix("r#").unwrap_or(&fn_name).to_owned();
        let python_name = options.name.clone().unwrap_or_else(|| fn_name.clone());
        let symbol = match &owner {
            Some(o) => format!("{}_{}_{}", crate_name(), o.name, fn_name),
            None => format!("{}_{}", crate_name(), fn_name),
        };
        Ok(Export {
            sig,
            python_name,
            symbol,
            doc: doc_of(attrs),
            runtime: options
                .runtime
                .clone()
                .unwrap_or(("tokio".to_owned(), Span::call_site())),
            error_kind: options.error_kind.clone(),
            params,
            output,
            owner,
        })
    }

    fn role(&self) -> Role {
        self.owner.as_ref().map_or(Role::Function, |o| o.role)
    }

    pub(crate) fn generate(&self) -> syn::Result<Tokens> {
        let is_async = self.sig.asyncness.is_some();
        let kind = if self.output.stream {
            if is_async {
                return Err(syn::Error::new(
                    self.sig.span(),
                    "a stream function is a plain `fn` returning `impl Stream`",
                ));
            }
            "stream"
        } else if is_async {
            "async"
        } else {
            "sync"
        };
        if self.role() == Role::Constructor && kind != "sync" {
            return Err(syn::Error::new(
                self.sig.span(),
                "a constructor is a plain `fn` returning Self or Result<Self, E>",
            ));
        }
        let has_port = kind != "sync";
        let symbol = format_ident!("{}", self.symbol);
        let reserved: &[&str] = match kind {
            "stream" => &["buffer"],
            _ => &[],
        };
        let has_aiter = self.params.iter().any(|p| matches!(p.shape, Shape::Aiter));
        for p in &self.params {
            if reserved.contains(&p.name.as_str()) || (has_aiter && p.name == "prefetch") {
                return Err(syn::Error::new(
                    p.ty.span(),
                    format!(
                        "parameter `{}`: the name is the Python keyword argument asyncffi adds",
                        p.name
                    ),
                ));
            }
            if p.runtime && !has_port {
                return Err(syn::Error::new(
                    p.ty.span(),
                    format!(
                        "parameter `{}`: a sync function runs on no runtime; make it async",
                        p.name
                    ),
                ));
            }
        }

        let mut c_params = Vec::new();
        let mut converts = Vec::new();
        let mut call_args = Vec::new();
        let mut manifest_params = Vec::new();
        let mut needs_unsafe = kind == "sync";
        if has_port {
            c_params.push(quote!(port: u64));
            c_params.push(quote!(token: u64));
        }
        let method = self.role() == Role::Method;
        if method {
            let self_ty = self.owner.as_ref().expect("methods have an owner").self_ty;
            c_params.push(quote!(__affi_self: u64));
            converts.push(quote! {
                let __affi_this: ::std::sync::Arc<#self_ty> =
                    ::asyncffi::convert::object_from_handle::<#self_ty>(__affi_self)?;
            });
        }
        let markers_mod = format_ident!("__affi_params_{}", self.symbol);
        let mut markers = Vec::new();
        for p in &self.params {
            let (id, name, ty) = (&p.ident, &p.name, &p.ty);
            let span = ty.span();
            // A keyword (`r#type`) is named raw.
            let marker_ident = syn::parse_str::<syn::Ident>(name)
                .unwrap_or_else(|_| proc_macro2::Ident::new_raw(name, Span::call_site()));
            markers.push(quote!(pub struct #marker_ident;));
            let marker = quote!(#markers_mod::#marker_ident);
            let abi;
            match &p.shape {
                Shape::Scalar => {
                    abi = quote!(<#ty as ::asyncffi::convert::Scalar>::ABI);
                    c_params.push(quote!(#id: <#ty as ::asyncffi::convert::Scalar>::Abi));
                    converts.push(quote_spanned! {span=>
                        let #id: #ty = <#ty as ::asyncffi::convert::Scalar>::from_abi(#id)
                            .map_err(|f| ::asyncffi::convert::in_param(f, #name))?;
                    });
                    if let Some(min) = p.min {
                        converts.push(quote_spanned! {span=>
                            let #id: #ty = ::asyncffi::__private::at_least(#id, #min, #name)?;
                        });
                    }
                }
                Shape::Tagged => {
                    needs_unsafe = true;
                    abi = quote!("value");
                    let tag = format_ident!("{}_tag", id);
                    let int = format_ident!("{}_int", id);
                    let float = format_ident!("{}_float", id);
                    let data = format_ident!("{}_data", id);
                    let len = format_ident!("{}_len", id);
                    c_params.push(quote!(#tag: u32));
                    c_params.push(quote!(#int: i64));
                    c_params.push(quote!(#float: f64));
                    c_params.push(quote!(#data: *const u8));
                    c_params.push(quote!(#len: usize));
                    converts.push(quote_spanned! {span=>
                        // SAFETY: the caller passes `len` readable bytes at `data` (the
                        // function's `# Safety` contract).
                        let #id: #ty = unsafe { ::asyncffi::args::value(#tag, #int, #float, #data, #len) }
                            .map_err(|f| ::asyncffi::convert::in_param(f, #name))?;
                    });
                }
                Shape::Handle(inner) => {
                    abi = quote!("handle");
                    c_params.push(quote!(#id: u64));
                    converts.push(quote_spanned! {span=>
                        let #id: #ty = ::asyncffi::convert::object_from_handle::<#inner>(#id)
                            .map_err(|f| ::asyncffi::convert::in_param(f, #name))?;
                    });
                }
                Shape::Callable | Shape::Aiter => {
                    let (label, adopt) = match p.shape {
                        Shape::Callable => ("callable", quote!(::asyncffi::PyCallable::adopt)),
                        _ => ("aiter", quote!(::asyncffi::PyStream::adopt)),
                    };
                    if !has_port {
                        return Err(syn::Error::new(
                            span,
                            format!(
                                "parameter `{name}`: a sync function cannot take a Python \
                                 {label} (it has no event loop); make it async"
                            ),
                        ));
                    }
                    abi = quote!(#label);
                    c_params.push(quote!(#id: u64));
                    if matches!(p.shape, Shape::Aiter) {
                        let prefetch = format_ident!("{}_prefetch", id);
                        c_params.push(quote!(#prefetch: u64));
                        converts.push(quote_spanned! {span=>
                            let #id: #ty = ::asyncffi::__private::adopt_stream(port, #id, #prefetch)
                                .map_err(|f| ::asyncffi::convert::in_param(f, #name))?;
                        });
                    } else {
                        converts.push(quote_spanned! {span=>
                            let #id: #ty = #adopt(port, #id)
                                .map_err(|f| ::asyncffi::convert::in_param(f, #name))?;
                        });
                    }
                }
                Shape::Buffer => {
                    needs_unsafe = true;
                    abi = quote!("buffer");
                    let data = format_ident!("{}_data", id);
                    let len = format_ident!("{}_len", id);
                    c_params.push(quote!(#data: *const u8));
                    c_params.push(quote!(#len: usize));
                    if p.rest {
                        // The list's items, each as deep as a value passed alone.
                        converts.push(quote_spanned! {span=>
                            // SAFETY: the caller passes `len` readable bytes at `data` (the
                            // function's `# Safety` contract).
                            let #id: #ty = unsafe { ::asyncffi::__private::rest_args(#data, #len) }
                                .map_err(|f| ::asyncffi::convert::in_param(f, #name))?;
                        });
                        call_args.push(quote!(#id));
                        let default = quote!(None);
                        manifest_params.push(quote! {
                            ::asyncffi::__private::Param {
                                name: #name,
                                ty: {
                                    fn __affi_ty() -> ::asyncffi::convert::TypeDesc {
                                        <::asyncffi::Args as ::asyncffi::FromPython>::TYPE
                                    }
                                    __affi_ty
                                },
                                abi: "buffer",
                                default: #default,
                                keyword: false,
                                min: None,
                            }
                        });
                        continue;
                    }
                    converts.push(quote_spanned! {span=>
                        #[allow(unused_imports)]
                        use ::asyncffi::__private::{ArgByTrait as _, ArgBySerde as _, ArgUnsupported as _};
                        // SAFETY: the caller passes `len` readable bytes at `data` (the
                        // function's `# Safety` contract).
                        let #id: #ty = match unsafe { ::asyncffi::__private::arg_bytes(#data, #len) } {
                            Ok(bytes) => (&&::asyncffi::__private::Arg::<#ty, #marker>::new())
                                .decode_arg(bytes),
                            Err(f) => Err(f),
                        }
                        .map_err(|f| ::asyncffi::convert::in_param(f, #name))?;
                    });
                }
            }
            call_args.push(quote!(#id));
            let default = match &p.default {
                Some(d) => quote!(Some(#d)),
                None => quote!(None),
            };
            let keyword = p.keyword;
            let min = match p.min {
                Some(m) => quote!(Some(#m)),
                None => quote!(None),
            };
            let desc = quote_spanned! {span=>
                (&&::asyncffi::__private::Arg::<#ty, #marker>::new()).desc()
            };
            manifest_params.push(quote! {
                ::asyncffi::__private::Param {
                    name: #name,
                    ty: {
                        fn __affi_ty() -> ::asyncffi::convert::TypeDesc {
                            #[allow(unused_imports)]
                            use ::asyncffi::__private::{ArgByTrait as _, ArgBySerde as _, ArgUnsupported as _};
                            #desc
                        }
                        __affi_ty
                    },
                    abi: #abi,
                    default: #default,
                    keyword: #keyword,
                    min: #min,
                }
            });
        }
        if kind == "stream" {
            c_params.push(quote!(buffer: u64));
        }
        if kind == "sync" {
            c_params.push(quote!(out: *mut ::asyncffi::port::AffiCompletion));
        }

        // The call itself.
        let ident = &self.sig.ident;
        let call = match &self.owner {
            Some(o) if o.role == Role::Method => quote!(__affi_this.#ident(#(#call_args),*)),
            Some(o) => {
                let self_ty = o.self_ty;
                quote!(<#self_ty>::#ident(#(#call_args),*))
            }
            None => quote!(#ident(#(#call_args),*)),
        };
        let out_span = self.output.value.span();
        let value_of = |expr: Tokens| {
            let convert = quote_spanned! {out_span=>
                (&&::asyncffi::__private::Ret::new(#expr)).convert_ret()
            };
            quote! {{
                #[allow(unused_imports)]
                use ::asyncffi::__private::{RetByTrait as _, RetBySerde as _, RetUnsupported as _};
                #convert
            }}
        };
        let error_of = match &self.error_kind {
            Some(kind) => {
                quote!(::asyncffi::Error::new(#kind, ::std::string::ToString::to_string(&e)))
            }
            None => quote! {{
                #[allow(unused_imports)]
                use ::asyncffi::__private::{FailByTrait as _, FailByDisplay as _};
                (&&::asyncffi::__private::Fail::new(e)).convert_err()
            }},
        };
        let ok_value = value_of(quote!(v));
        let convert_result = |expr: Tokens| {
            if self.output.fallible {
                quote! {
                    match #expr {
                        Ok(v) => #ok_value,
                        Err(e) => Err(#error_of),
                    }
                }
            } else {
                value_of(expr)
            }
        };
        let runtime = match self.params.iter().find(|p| p.runtime) {
            // The caller's choice, converted (and checked) with the other parameters.
            Some(p) => {
                let id = &p.ident;
                quote!(#id)
            }
            None => match self.runtime.0.as_str() {
                "async-std" => quote_spanned!(self.runtime.1=> ::asyncffi::Runtime::AsyncStd),
                "loop" => quote_spanned!(self.runtime.1=> ::asyncffi::Runtime::Loop),
                "tokio" => quote_spanned!(self.runtime.1=> ::asyncffi::Runtime::Tokio),
                // A registered runtime: found by name (a short scan of the library's
                // registrations), an error for Python if there is none.
                name => quote_spanned!(self.runtime.1=> ::asyncffi::Runtime::named(#name)?),
            },
        };
        let body = match kind {
            "async" => {
                let result = convert_result(quote!(__affi_out));
                quote! {
                    ::asyncffi::guard(|| {
                        #(#converts)*
                        let __affi_future = ::asyncffi::__private::assert_future(async move {
                            let __affi_out = #call.await;
                            #result
                        });
                        let task = ::asyncffi::spawn(#runtime, port, token, __affi_future)?;
                        Ok(task as i64)
                    })
                }
            }
            "stream" => {
                let item = convert_result(quote!(item));
                quote! {
                    ::asyncffi::guard(|| {
                        #(#converts)*
                        let __affi_items = ::asyncffi::__private::map_stream(#call, |item| #item);
                        let task = ::asyncffi::spawn_stream(#runtime, port, token, __affi_items, buffer)?;
                        Ok(task as i64)
                    })
                }
            }
            _ => {
                let result = convert_result(quote!(__affi_out));
                quote! {
                    let __affi_body = || {
                        #(#converts)*
                        let __affi_out = #call;
                        Ok(#result)
                    };
                    // SAFETY: forwarded contract (`out`).
                    unsafe { ::asyncffi::__private::sync_call(out, __affi_body) }
                }
            }
        };
        let ret = if kind == "sync" {
            quote!(i32)
        } else {
            quote!(i64)
        };
        let unsafety = needs_unsafe.then(|| quote!(unsafe));
        let safety_doc = needs_unsafe.then(|| {
            quote! {
                #[doc = ""]
                #[doc = "# Safety"]
                #[doc = "Each `(data, len)` pair must be readable for `len` bytes during the call (a tagged value's `data` only for the tags that carry bytes), and `out` (for a sync function) must be NULL or point to a writable `AffiCompletion`."]
            }
        });
        let c_doc = format!(
            "The C shim of `{}` (exported with asyncffi; see its manifest).",
            self.python_name
        );

        // The manifest entry.
        let python_name = &self.python_name;
        let symbol_str = &self.symbol;
        let krate = crate_name();
        let kind_tokens = match kind {
            "async" => quote!(::asyncffi::__private::Kind::Async),
            "stream" => quote!(::asyncffi::__private::Kind::Stream),
            _ => quote!(::asyncffi::__private::Kind::Sync),
        };
        let role_tokens = match self.role() {
            Role::Function => quote!(::asyncffi::__private::Role::Function),
            Role::Constructor => quote!(::asyncffi::__private::Role::Constructor),
            Role::Method => quote!(::asyncffi::__private::Role::Method),
            Role::Static => quote!(::asyncffi::__private::Role::Static),
        };
        let runtime_str = if kind == "sync" {
            quote!(None)
        } else {
            let r = &self.runtime.0;
            quote!(Some(#r))
        };
        let object = match &self.owner {
            Some(o) => {
                let n = &o.name;
                quote!(Some(#n))
            }
            None => quote!(None),
        };
        let value_ty = &self.output.value;
        let returns_desc = quote_spanned! {out_span=>
            (&&::asyncffi::__private::Ret::<#value_ty>::of()).desc()
        };
        let fallible = self.output.fallible;
        let doc = &self.doc;
        let entry = format_ident!("__AFFI_ENTRY_{}", self.symbol.to_uppercase());
        Ok(quote! {
            /// Types named after the parameters, for compile errors.
            #[doc(hidden)]
            #[allow(non_camel_case_types, non_snake_case, dead_code)]
            mod #markers_mod {
                #(#markers)*
            }

            #[doc = #c_doc]
            #safety_doc
            #[no_mangle]
            #[allow(clippy::too_many_arguments, clippy::useless_conversion, non_snake_case)]
            pub #unsafety extern "C" fn #symbol(#(#c_params),*) -> #ret {
                #body
            }

            #[::asyncffi::__private::linkme::distributed_slice(::asyncffi::__private::FUNCTIONS)]
            #[linkme(crate = ::asyncffi::__private::linkme)]
            #[allow(non_upper_case_globals)]
            static #entry: ::asyncffi::__private::Function = ::asyncffi::__private::Function {
                name: #python_name,
                symbol: #symbol_str,
                krate: #krate,
                kind: #kind_tokens,
                role: #role_tokens,
                runtime: #runtime_str,
                object: #object,
                params: &[#(#manifest_params),*],
                returns: {
                    fn __affi_ty() -> ::asyncffi::convert::TypeDesc {
                        #[allow(unused_imports)]
                        use ::asyncffi::__private::{RetByTrait as _, RetBySerde as _, RetUnsupported as _};
                        #returns_desc
                    }
                    __affi_ty
                },
                fallible: #fallible,
                doc: #doc,
            };
        })
    }
}
