//! The manifest: what a cdylib built on asyncffi exports, for the Python loader and header
//! generators to read. `#[asyncffi::export]` and `#[asyncffi::object]` register one entry per
//! exported function, method and object in link-section registries (`linkme` distributed
//! slices), so no list is kept by hand; `affi_manifest` renders them once as JSON.
//!
//! # Format, version 1
//!
//! One UTF-8 JSON object:
//!
//! ```text
//! {"format": "asyncffi-manifest", "version": 1, "abi": <affi_abi_version()>,
//!  "functions": [<function>...],            free functions, sorted by name
//!  "records": [<record>...],                serde types described field by field
//!  "objects": [{"name": str, "rust": str, "crate": str, "doc": str,
//!               "methods": [<function>...]}...]}   sorted by name; methods by name
//!                                   (an object in a completion names its type by its
//!                                   1-based position here, in `len`: see `object_index`)
//! <function> = {"name": str,        Python-facing name
//!   "symbol": str,                  the C function to call
//!   "crate": str,                   the Rust crate that defines it
//!   "kind": "async" | "sync" | "stream",       how it is called (C shapes below)
//!   "role": "function" | "constructor" | "method" | "static",
//!   "runtime": "tokio" | "async-std" | "loop" | null (sync),
//!   "params": [{"name": str, "type": <type>, "abi": <abi>, "default": <json>,
//!               "keyword": true, "min": int}...],
//!                                   "default" is present only when the parameter has one
//!                                   (a trailing Option: null; `#[asyncffi(default = lit)]`:
//!                                   the literal); "keyword" only for a keyword-only one
//!                                   (`#[asyncffi(keyword)]`, and every "runtime");
//!                                   "min" only for an int below which a value is refused
//!                                   with ValueError (`#[asyncffi(min = N)]`)
//!   "returns": <type>,              of the value (the Ok type of a Result; a stream's item)
//!   "fallible": bool,               whether it can fail with a RustError (it returns Result)
//!   "doc": str}                     the `///` comments, lines joined with "\n"
//! <abi> = "i64" | "u64" | "f64" | "u32"   one C scalar of that type (int64_t, uint64_t,
//!                                         double, uint32_t: a bool is 0 or 1; a duration
//!                                         is seconds as a double)
//!       | "runtime"    uint32_t: a runtime's C value as `affi_runtimes` lists it (the
//!                      caller's `runtime=` keyword)
//!       | "value"      five C arguments (uint32_t tag, int64_t int_value, double float_value,
//!                      const uint8_t *data, size_t len): an `asyncffi::Value` tagged as in
//!                      a completion, scalars without the codec
//!       | "buffer"     two C arguments (const uint8_t *data, size_t len): the value packed
//!                      with the codec (msgpack); len 0 means None
//!       | "handle"     uint64_t: an exported object's handle
//!       | "callable"   uint64_t: a lent Python callable (as `PyCallable::adopt`)
//!       | "aiter"      two uint64_t: a lent Python async iterator (as `PyStream::adopt`) and
//!                      how many items to ask for ahead (0: the default); the function has a
//!                      keyword-only `prefetch=None` in Python
//! <type> = {"type": "none" | "bool" | "str" | "bytes" | "any" | "callable" | "aiter"}
//!        | {"type": "duration"}                      float seconds (`Duration`)
//!        | {"type": "runtime"}                       "tokio" | "async-std" | "loop"
//!        | {"type": "args"}                          the rest of the positional arguments
//!                                                    (`asyncffi::Args`, `*args`; a list)
//!        | {"type": "int", "rust": str, "min": int, "max": int}
//!        | {"type": "float", "rust": "f32" | "f64"}
//!        | {"type": "list" | "optional", "item": <type>}
//!        | {"type": "dict", "value": <type>}          keys are str
//!        | {"type": "tuple", "items": [<type>...]}
//!        | {"type": "object", "name": str}
//!        | {"type": "serde", "rust": str}             a serde type: dicts for structs; "rust"
//!                                                    is its type name with each path cut to
//!                                                    its last segment (`Vec<Event>`)
//! <record> = {"name": str,          the Rust type's name (as a "serde" type names it)
//!   "rust": str, "crate": str, "doc": str,
//!   "kind": "struct", "fields": [<field>...]        a dict by field name
//!   | "kind": "enum", "variants": [{"name": str, "doc": str,
//!        "kind": "unit"                             the variant's name, a str
//!        | "kind": "newtype", "type": <type>        {name: value}
//!        | "kind": "tuple", "items": [<type>...]    {name: [values...]}
//!        | "kind": "struct", "fields": [<field>...] {name: {field: value...}}}...]}
//! <field> = {"name": str, "type": <type>, "doc": str}
//! ```
//!
//! `"records"` (the serde types that derive `asyncffi::Record`, sorted by name) came after the
//! first readers of version 1: a reader finds it absent in older libraries, and older readers
//! ignore it, so the version stays 1.
//!
//! C shapes, by kind (`self` is the object handle of a method, before the parameters):
//! - async: `int64_t symbol(uint64_t port, uint64_t token, [uint64_t self,] params...)`: a task
//!   id, 0 if the outcome is ready inline (`affi_port_take_inline`), or a negative status.
//! - stream: the same with a trailing `uint64_t buffer` (0: the default credit); the function
//!   has a keyword-only `buffer=None` in Python.
//! - sync: `int32_t symbol([uint64_t self,] params..., AffiCompletion *out)`: 0 with the
//!   outcome written to `out` (status ok / error / panic, value as in a drain; free a non-NULL
//!   `data` with `affi_result_free`), or a negative status for a bad argument.

use std::any::TypeId;
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::OnceLock;

use crate::convert::TypeDesc;

/// The manifest format version.
pub const VERSION: u32 = 1;

/// How an exported function is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Returns a task; the outcome arrives through the port.
    Async,
    /// Returns its outcome at once.
    Sync,
    /// Returns a task whose items arrive through the port.
    Stream,
}

/// What an exported function is to Python.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A module-level function.
    Function,
    /// An object's constructor (a sync call returning the object).
    Constructor,
    /// A method taking the object handle first.
    Method,
    /// A static method of an object.
    Static,
}

/// One parameter of an exported function.
pub struct Param {
    /// Its name.
    pub name: &'static str,
    /// Its type.
    pub ty: fn() -> TypeDesc,
    /// How it travels (see the format above).
    pub abi: &'static str,
    /// Its default, as JSON text (`"null"` for a trailing `Option`).
    pub default: Option<&'static str>,
    /// Whether it is keyword-only in Python.
    pub keyword: bool,
    /// The smallest int accepted; below it the call fails with `ValueError`.
    pub min: Option<i64>,
}

/// One exported function or method.
pub struct Function {
    /// The Python-facing name.
    pub name: &'static str,
    /// The C symbol.
    pub symbol: &'static str,
    /// The defining crate.
    pub krate: &'static str,
    /// How it is called.
    pub kind: Kind,
    /// What it is.
    pub role: Role,
    /// The runtime of async and stream functions.
    pub runtime: Option<&'static str>,
    /// The Python-facing name of its object, for constructors, methods and static methods.
    pub object: Option<&'static str>,
    /// The parameters, in order.
    pub params: &'static [Param],
    /// The type of the value.
    pub returns: fn() -> TypeDesc,
    /// Whether it returns a `Result`.
    pub fallible: bool,
    /// Its doc comment.
    pub doc: &'static str,
}

/// One exported object type.
pub struct Object {
    /// The Python-facing name.
    pub name: &'static str,
    /// The Rust type.
    pub rust: &'static str,
    /// The defining crate.
    pub krate: &'static str,
    /// Its doc comment.
    pub doc: &'static str,
    /// The Rust type's id, to name the type of an object a completion carries.
    pub type_id: fn() -> TypeId,
}

/// One field of a record (a struct, or a struct variant of an enum).
pub struct Field {
    /// Its name, as serde writes it.
    pub name: &'static str,
    /// Its type.
    pub ty: fn() -> TypeDesc,
    /// Its doc comment.
    pub doc: &'static str,
}

/// What one variant of a record enum holds.
pub enum VariantData {
    /// Nothing: the variant is its name.
    Unit,
    /// One value: `{name: value}`.
    Newtype(fn() -> TypeDesc),
    /// Several values: `{name: [values...]}`.
    Tuple(&'static [fn() -> TypeDesc]),
    /// Named fields: `{name: {field: value...}}`.
    Struct(&'static [Field]),
}

/// One variant of a record enum.
pub struct Variant {
    /// Its name, as serde writes it.
    pub name: &'static str,
    /// What it holds.
    pub data: VariantData,
    /// Its doc comment.
    pub doc: &'static str,
}

/// The shape of a record.
pub enum RecordShape {
    /// A struct with named fields: a dict by field name.
    Struct(&'static [Field]),
    /// An enum: one of its variants.
    Enum(&'static [Variant]),
}

/// A serde type described field by field (`#[derive(asyncffi::Record)]`), for typed stubs.
pub struct Record {
    /// The type's name (the last segment of its path).
    pub name: &'static str,
    /// The Rust type's full name.
    pub rust: fn() -> &'static str,
    /// The defining crate.
    pub krate: &'static str,
    /// Its doc comment.
    pub doc: &'static str,
    /// Its fields or variants.
    pub shape: RecordShape,
}

/// Every record type of the library.
#[linkme::distributed_slice]
pub static RECORDS: [Record];

/// Every exported function and method of the library.
#[linkme::distributed_slice]
pub static FUNCTIONS: [Function];

/// Every exported object type of the library.
#[linkme::distributed_slice]
pub static OBJECTS: [Object];

/// The manifest as JSON, rendered once.
pub fn json() -> &'static str {
    static RENDERED: OnceLock<String> = OnceLock::new();
    RENDERED.get_or_init(|| render(&FUNCTIONS, &OBJECTS, &RECORDS))
}

/// The objects in manifest order (by name).
fn sorted_objects(objects: &[Object]) -> Vec<&Object> {
    let mut objects: Vec<&Object> = objects.iter().collect();
    objects.sort_by_key(|o| o.name);
    objects
}

/// Which exported object type `id` is: its 1-based position in the manifest's `"objects"`
/// (sorted by name), or 0 for a type exported without the macros. A completion carrying an
/// object has it in `len` (its `data` is NULL), so Python wraps the object in its class
/// wherever it arrives: a sync or async result, a stream item, an `Option`'s value.
pub fn object_index(id: TypeId) -> usize {
    static INDEX: OnceLock<HashMap<TypeId, usize>> = OnceLock::new();
    let index = INDEX.get_or_init(|| {
        sorted_objects(&OBJECTS)
            .iter()
            .enumerate()
            .map(|(i, o)| ((o.type_id)(), i + 1))
            .collect()
    });
    index.get(&id).copied().unwrap_or(0)
}

fn render(functions: &[Function], objects: &[Object], records: &[Record]) -> String {
    let mut out = String::with_capacity(1024);
    let _ = write!(
        out,
        "{{\"format\":\"asyncffi-manifest\",\"version\":{VERSION},\"abi\":{},\"functions\":[",
        crate::ffi::ABI_VERSION
    );
    let mut free: Vec<&Function> = functions.iter().filter(|f| f.object.is_none()).collect();
    free.sort_by_key(|f| f.name);
    join(&mut out, &free, |out, f| function(out, f));
    out.push_str("],\"records\":[");
    let mut records: Vec<&Record> = records.iter().collect();
    records.sort_by_key(|r| r.name);
    join(&mut out, &records, |out, r| record(out, r));
    out.push_str("],\"objects\":[");
    let objects = sorted_objects(objects);
    join(&mut out, &objects, |out, o| {
        out.push_str("{\"name\":");
        string(out, o.name);
        out.push_str(",\"rust\":");
        string(out, o.rust);
        out.push_str(",\"crate\":");
        string(out, o.krate);
        out.push_str(",\"doc\":");
        string(out, o.doc);
        out.push_str(",\"methods\":[");
        let mut methods: Vec<&Function> = functions
            .iter()
            .filter(|f| f.object == Some(o.name))
            .collect();
        methods.sort_by_key(|f| f.name);
        join(out, &methods, |out, f| function(out, f));
        out.push_str("]}");
    });
    out.push_str("]}");
    out
}

fn join<T>(out: &mut String, items: &[T], mut each: impl FnMut(&mut String, &T)) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        each(out, item);
    }
}

fn function(out: &mut String, f: &Function) {
    out.push_str("{\"name\":");
    string(out, f.name);
    out.push_str(",\"symbol\":");
    string(out, f.symbol);
    out.push_str(",\"crate\":");
    string(out, f.krate);
    let kind = match f.kind {
        Kind::Async => "async",
        Kind::Sync => "sync",
        Kind::Stream => "stream",
    };
    let role = match f.role {
        Role::Function => "function",
        Role::Constructor => "constructor",
        Role::Method => "method",
        Role::Static => "static",
    };
    let _ = write!(out, ",\"kind\":\"{kind}\",\"role\":\"{role}\",\"runtime\":");
    match f.runtime {
        Some(r) => string(out, r),
        None => out.push_str("null"),
    }
    out.push_str(",\"params\":[");
    join(out, f.params, |out, p| {
        out.push_str("{\"name\":");
        string(out, p.name);
        out.push_str(",\"type\":");
        type_desc(out, &(p.ty)());
        out.push_str(",\"abi\":");
        string(out, p.abi);
        if let Some(default) = p.default {
            out.push_str(",\"default\":");
            out.push_str(default);
        }
        if p.keyword {
            out.push_str(",\"keyword\":true");
        }
        if let Some(min) = p.min {
            let _ = write!(out, ",\"min\":{min}");
        }
        out.push('}');
    });
    out.push_str("],\"returns\":");
    type_desc(out, &(f.returns)());
    let _ = write!(out, ",\"fallible\":{},\"doc\":", f.fallible);
    string(out, f.doc);
    out.push('}');
}

fn record(out: &mut String, r: &Record) {
    out.push_str("{\"name\":");
    string(out, r.name);
    out.push_str(",\"rust\":");
    string(out, (r.rust)());
    out.push_str(",\"crate\":");
    string(out, r.krate);
    out.push_str(",\"doc\":");
    string(out, r.doc);
    match &r.shape {
        RecordShape::Struct(fields) => {
            out.push_str(",\"kind\":\"struct\",\"fields\":");
            field_list(out, fields);
        }
        RecordShape::Enum(variants) => {
            out.push_str(",\"kind\":\"enum\",\"variants\":[");
            join(out, variants, |out, v| {
                out.push_str("{\"name\":");
                string(out, v.name);
                out.push_str(",\"doc\":");
                string(out, v.doc);
                match &v.data {
                    VariantData::Unit => out.push_str(",\"kind\":\"unit\""),
                    VariantData::Newtype(ty) => {
                        out.push_str(",\"kind\":\"newtype\",\"type\":");
                        type_desc(out, &ty());
                    }
                    VariantData::Tuple(items) => {
                        out.push_str(",\"kind\":\"tuple\",\"items\":[");
                        join(out, items, |out, ty| type_desc(out, &ty()));
                        out.push(']');
                    }
                    VariantData::Struct(fields) => {
                        out.push_str(",\"kind\":\"struct\",\"fields\":");
                        field_list(out, fields);
                    }
                }
                out.push('}');
            });
            out.push(']');
        }
    }
    out.push('}');
}

fn field_list(out: &mut String, fields: &[Field]) {
    out.push('[');
    join(out, fields, |out, f| {
        out.push_str("{\"name\":");
        string(out, f.name);
        out.push_str(",\"type\":");
        type_desc(out, &(f.ty)());
        out.push_str(",\"doc\":");
        string(out, f.doc);
        out.push('}');
    });
    out.push(']');
}

fn type_desc(out: &mut String, t: &TypeDesc) {
    let simple = |out: &mut String, name: &str| {
        let _ = write!(out, "{{\"type\":\"{name}\"}}");
    };
    match t {
        TypeDesc::None => simple(out, "none"),
        TypeDesc::Bool => simple(out, "bool"),
        TypeDesc::Str => simple(out, "str"),
        TypeDesc::Bytes => simple(out, "bytes"),
        TypeDesc::Any => simple(out, "any"),
        TypeDesc::Callable => simple(out, "callable"),
        TypeDesc::AsyncIterator => simple(out, "aiter"),
        TypeDesc::Duration => simple(out, "duration"),
        TypeDesc::Runtime => simple(out, "runtime"),
        TypeDesc::Args => simple(out, "args"),
        TypeDesc::Int { rust, min, max } => {
            let _ = write!(
                out,
                "{{\"type\":\"int\",\"rust\":\"{rust}\",\"min\":{min},\"max\":{max}}}"
            );
        }
        TypeDesc::Float(rust) => {
            let _ = write!(out, "{{\"type\":\"float\",\"rust\":\"{rust}\"}}");
        }
        TypeDesc::List(item) | TypeDesc::Optional(item) => {
            let name = if matches!(t, TypeDesc::List(_)) {
                "list"
            } else {
                "optional"
            };
            let _ = write!(out, "{{\"type\":\"{name}\",\"item\":");
            type_desc(out, item);
            out.push('}');
        }
        TypeDesc::Dict(value) => {
            out.push_str("{\"type\":\"dict\",\"value\":");
            type_desc(out, value);
            out.push('}');
        }
        TypeDesc::Tuple(items) => {
            out.push_str("{\"type\":\"tuple\",\"items\":[");
            join(out, items, type_desc);
            out.push_str("]}");
        }
        TypeDesc::Object(name) => {
            out.push_str("{\"type\":\"object\",\"name\":");
            string(out, name);
            out.push('}');
        }
        TypeDesc::Serde(rust) => {
            out.push_str("{\"type\":\"serde\",\"rust\":");
            string(out, &short_type_name(rust));
            out.push('}');
        }
    }
}

/// `alloc::vec::Vec<my_crate::Event>` as `Vec<Event>`: each path reduced to its last segment.
pub fn short_type_name(full: &str) -> String {
    let mut out = String::with_capacity(full.len());
    let mut segment = String::new();
    for c in full.chars() {
        if c.is_alphanumeric() || c == '_' || c == ':' {
            segment.push(c);
        } else {
            out.push_str(segment.rsplit("::").next().unwrap_or(""));
            segment.clear();
            out.push(c);
        }
    }
    out.push_str(segment.rsplit("::").next().unwrap_or(""));
    out
}

/// `s` as a JSON string.
fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped() {
        let mut out = String::new();
        string(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(out, "\"a\\\"b\\\\c\\nd\\u0001é\"");
    }

    #[test]
    fn type_names_lose_their_paths() {
        assert_eq!(
            short_type_name("alloc::vec::Vec<my_crate::Event>"),
            "Vec<Event>"
        );
        assert_eq!(short_type_name("(u8, a::B)"), "(u8, B)");
    }
}
