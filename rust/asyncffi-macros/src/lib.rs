//! The attribute macros of asyncffi, re-exported by the core crate: `#[asyncffi::export]` on a
//! function, `#[asyncffi::object]` on an impl block (with `#[asyncffi::constructor]` on its
//! constructor). Each generates the `extern "C"` shim of every exported function and its
//! manifest entry (see `asyncffi::manifest` for both formats).
//!
//! How a parameter travels is decided from how its type is written: a primitive integer,
//! float or `bool` is one C scalar; `Arc<T>` an object handle; `PyCallable` and `PyStream` a
//! lent Python object's id; anything else an encoded buffer. What it converts from is decided
//! by the type itself (the `asyncffi::FromPython` trait, or serde), so aliases work (they
//! travel as buffers).

#![deny(missing_docs)]

mod export;
mod main_fn;
mod object;
mod options;
mod record;
mod types;

use proc_macro::TokenStream;
use quote::quote;
use syn::{DeriveInput, ItemFn, ItemImpl};

use export::Export;
use object::object_shims;
use options::Options;

/// Runs `async fn main` with Python (the core's feature `python`): the interpreter is found
/// at run time, its event loop runs on the main thread, and `main` is polled on that thread
/// (no thread hop per call to Python) unless another runtime is chosen. `main` returns `()` or
/// `asyncffi::Result<()>`; the process exits as `asyncffi::python::run` says.
///
/// Options: `runtime = "loop"` (the default: polled on the event loop's thread, inside tokio's
/// context, so `tokio::spawn`, timers and `spawn_blocking` work) `| "tokio"` (on a tokio worker:
/// for a main that computes between its awaits, which would otherwise block the loop) `|
/// "async-std"`, `loop_factory = "uvloop"` (or `"module:function"`), `python = "..."` (the
/// interpreter), `path = "..."` (a `sys.path` entry).
#[proc_macro_attribute]
pub fn main(attr: TokenStream, item: TokenStream) -> TokenStream {
    let result = syn::parse(item).and_then(|func| main_fn::generate(attr.into(), func));
    result.unwrap_or_else(|e| e.to_compile_error()).into()
}

/// Exports a function to Python: `async fn` (awaited), plain `fn` (called), or `fn` returning
/// `impl Stream<Item = ...>` (iterated with `async for`).
///
/// Options: `runtime = "tokio" | "async-std" | "loop" | "<a runtime registered with
/// asyncffi::register_runtime!>"` (default tokio), `name = "..."` (the
/// Python-facing name), `error_kind = "..."` (the kind of every error it returns).
#[proc_macro_attribute]
pub fn export(attr: TokenStream, item: TokenStream) -> TokenStream {
    let result = (|| {
        let options = Options::parse(attr.into())?;
        let mut func: ItemFn = syn::parse(item)?;
        let shim = Export::new(&func.sig, &func.attrs, &options, None)?.generate()?;
        options::strip_param_options(&mut func.sig);
        Ok::<_, syn::Error>(quote! { #func #shim })
    })();
    result.unwrap_or_else(|e| e.to_compile_error()).into()
}

/// Exports an impl block as a Python class: its `#[asyncffi::constructor]`, its methods on
/// `&self` (sync or async; the type must be `Send + Sync + 'static`) and its static methods.
/// A method may carry `#[asyncffi::export(...)]` with its own options; `#[asyncffi::skip]`
/// leaves a function out. Options on the block (`name`, `runtime`, `error_kind`) apply to
/// every method.
#[proc_macro_attribute]
pub fn object(attr: TokenStream, item: TokenStream) -> TokenStream {
    let result = (|| {
        let options = Options::parse(attr.into())?;
        let mut block: ItemImpl = syn::parse(item)?;
        let shims = object_shims(&mut block, &options)?;
        Ok::<_, syn::Error>(quote! { #block #shims })
    })();
    result.unwrap_or_else(|e| e.to_compile_error()).into()
}

/// Marks the constructor of an `#[asyncffi::object]` impl block (it returns `Self` or
/// `Result<Self, E>`). Only meaningful there.
#[proc_macro_attribute]
pub fn constructor(_attr: TokenStream, item: TokenStream) -> TokenStream {
    item
}

/// Keeps a function of an `#[asyncffi::object]` impl block out of the export (a helper for
/// Rust only). Only meaningful there.
#[proc_macro_attribute]
pub fn skip(_attr: TokenStream, item: TokenStream) -> TokenStream {
    item
}

/// Describes a serde struct (named fields) or enum field by field in the library's manifest,
/// so its stubs are a `TypedDict` or a union of its variants (`python -m asyncffi stubs`), and
/// Python gets the same types at run time. It adds no conversion: the type crosses by serde as
/// before. Refused with a compile error: generic types, and serde attributes that change the
/// data Python sees (`rename`, `tag`, `untagged`, `flatten`, `skip`, `with`, ...).
#[proc_macro_derive(Record)]
pub fn record(item: TokenStream) -> TokenStream {
    let result = syn::parse::<DeriveInput>(item).and_then(record::derive);
    result.unwrap_or_else(|e| e.to_compile_error()).into()
}
