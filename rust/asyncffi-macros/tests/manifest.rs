//! The manifest a library exports, parsed back: names, symbols, kinds, runtimes, parameters
//! with their types, ABI shapes, defaults and options, return types, docs, objects and their
//! methods.

use std::sync::Arc;

use asyncffi::Stream;
use serde_json::{json, Value as Json};

/// Reads `n` lines
/// from a server.
#[asyncffi::export]
async fn fetch_lines(
    host: String,
    port: u16,
    n: Option<u32>,
) -> Result<Vec<String>, std::io::Error> {
    let _ = (host, port, n);
    Ok(Vec::new())
}

#[asyncffi::export(runtime = "async-std", name = "ticks")]
fn tick_stream(n: u32) -> impl Stream<Item = f64> {
    asyncffi::stream::iter((0..n).map(f64::from))
}

#[asyncffi::export]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[derive(serde::Serialize)]
struct Event {
    id: u64,
}

#[asyncffi::export]
async fn latest(kinds: Vec<(String, bool)>) -> Option<Event> {
    let _ = kinds;
    None
}

#[asyncffi::export(runtime = "async-std")]
async fn wait_then_call(
    f: asyncffi::PyCallable,
    after: std::time::Duration,
    args: asyncffi::Args,
    #[asyncffi(keyword, default = "x")] label: String,
    #[asyncffi(keyword, min = 1, default = 3)] tries: u8,
    _rt: asyncffi::Runtime,
) -> asyncffi::Value {
    let _ = (f, after, args, label, tries);
    asyncffi::Value::None
}

#[asyncffi::export]
fn echo_items(items: asyncffi::PyStream, first: asyncffi::Value) -> impl Stream<Item = u8> {
    let _ = (items, first);
    asyncffi::stream::iter(0..1)
}

/// Another crate's `Value` is no `asyncffi::Value`: it crosses by serde, as a buffer.
#[asyncffi::export]
async fn json_in(doc: serde_json::Value, wait: std::time::Duration) -> bool {
    let _ = wait;
    doc.is_object()
}

struct Counter;

/// Counts.
#[asyncffi::object(name = "Tally")]
impl Counter {
    #[asyncffi::constructor]
    fn new() -> Self {
        Counter
    }

    #[asyncffi::export(runtime = "async-std", name = "bump_by")]
    async fn bump(&self, by: i32) -> i64 {
        Self::helper(by.into())
    }

    #[asyncffi::skip]
    fn helper(x: i64) -> i64 {
        x
    }

    fn same(other: Arc<Counter>) -> Arc<Counter> {
        other
    }
}

fn manifest() -> Json {
    let mut len = 0;
    // SAFETY: `len` is writable; the manifest lives as long as the library.
    let ptr = unsafe { asyncffi::ffi::affi_manifest(&mut len) };
    // SAFETY: `affi_manifest` points at `len` bytes.
    let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
    serde_json::from_slice(bytes).expect("the manifest is JSON")
}

fn int(rust: &str, min: i128, max: i128) -> Json {
    json!({"type": "int", "rust": rust, "min": min as i64, "max": max as u64})
}

#[test]
fn header_and_function_order() {
    let m = manifest();
    assert_eq!(m["format"], "asyncffi-manifest");
    assert_eq!(m["version"], asyncffi::manifest::VERSION);
    assert_eq!(m["abi"], asyncffi::ffi::ABI_VERSION);
    let names: Vec<&str> = m["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "echo_items",
            "fetch_lines",
            "json_in",
            "latest",
            "ticks",
            "version",
            "wait_then_call"
        ]
    );
}

fn function<'a>(m: &'a Json, name: &str) -> &'a Json {
    m["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap()
}

#[test]
fn async_functions_with_docs_types_shapes_and_defaults() {
    let m = manifest();
    assert_eq!(
        *function(&m, "fetch_lines"),
        json!({
            "name": "fetch_lines", "symbol": "manifest_fetch_lines", "crate": "manifest",
            "kind": "async", "role": "function", "runtime": "tokio",
            "params": [
                {"name": "host", "type": {"type": "str"}, "abi": "buffer"},
                {"name": "port", "type": int("u16", 0, 65535), "abi": "i64"},
                {"name": "n", "type": {"type": "optional", "item": int("u32", 0, u32::MAX.into())},
                 "abi": "buffer", "default": null},
            ],
            "returns": {"type": "list", "item": {"type": "str"}},
            "fallible": true,
            "doc": "Reads `n` lines\nfrom a server.",
        })
    );
    let latest = function(&m, "latest");
    assert_eq!(
        latest["params"][0]["type"],
        json!({"type": "list", "item": {"type": "tuple", "items": [{"type": "str"}, {"type": "bool"}]}})
    );
    assert_eq!(
        latest["returns"],
        json!({"type": "serde", "rust": "Option<Event>"})
    );
}

#[test]
fn runtimes_durations_args_values_and_parameter_options() {
    let m = manifest();
    let w = function(&m, "wait_then_call");
    assert_eq!(
        w["params"],
        json!([
            {"name": "f", "type": {"type": "callable"}, "abi": "callable"},
            {"name": "after", "type": {"type": "duration"}, "abi": "f64"},
            {"name": "args", "type": {"type": "args"}, "abi": "buffer"},
            {"name": "label", "type": {"type": "str"}, "abi": "buffer", "default": "x",
             "keyword": true},
            {"name": "tries", "type": int("u8", 0, 255), "abi": "i64", "default": 3,
             "keyword": true, "min": 1},
            // Whatever its Rust name, the caller's runtime is `runtime=`, defaulting to the
            // export's runtime option.
            {"name": "runtime", "type": {"type": "runtime"}, "abi": "runtime",
             "default": "async-std", "keyword": true},
        ])
    );
    assert_eq!(w["returns"], json!({"type": "any"}));
    let e = function(&m, "echo_items");
    assert_eq!(e["kind"], "stream");
    assert_eq!(e["params"][0]["abi"], "aiter");
    assert_eq!(
        e["params"][1],
        json!({"name": "first", "type": {"type": "any"}, "abi": "value"})
    );
    let j = function(&m, "json_in");
    assert_eq!(j["params"][0]["abi"], "buffer");
    assert_eq!(j["params"][0]["type"]["type"], "serde");
    assert_eq!(
        j["params"][1],
        json!({"name": "wait", "type": {"type": "duration"}, "abi": "f64"})
    );
}

#[test]
fn sync_and_stream_functions() {
    let m = manifest();
    let v = function(&m, "version");
    assert_eq!(v["kind"], "sync");
    assert_eq!(v["runtime"], Json::Null);
    assert_eq!(v["returns"], json!({"type": "str"}));
    assert_eq!(v["fallible"], false);
    let t = function(&m, "ticks");
    assert_eq!(t["symbol"], "manifest_tick_stream");
    assert_eq!(t["kind"], "stream");
    assert_eq!(t["runtime"], "async-std");
    assert_eq!(t["returns"], json!({"type": "float", "rust": "f64"}));
}

#[test]
fn objects_list_their_methods() {
    let m = manifest();
    let objects = m["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 1);
    let o = &objects[0];
    assert_eq!(o["name"], "Tally");
    assert_eq!(o["rust"], "Counter");
    assert_eq!(o["doc"], "Counts.");
    let methods: Vec<(&str, &str, &str, &str)> = o["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap(),
                f["symbol"].as_str().unwrap(),
                f["kind"].as_str().unwrap(),
                f["role"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        methods,
        [
            ("bump_by", "manifest_Tally_bump", "async", "method"),
            ("new", "manifest_Tally_new", "sync", "constructor"),
            ("same", "manifest_Tally_same", "sync", "static"),
        ]
    );
    assert_eq!(o["methods"][0]["runtime"], "async-std");
    let same = &o["methods"][2];
    assert_eq!(same["params"][0]["abi"], "handle");
    assert_eq!(
        same["params"][0]["type"],
        json!({"type": "object", "name": "Tally"})
    );
    assert_eq!(same["returns"], json!({"type": "object", "name": "Tally"}));
    assert_eq!(
        o["methods"][1]["returns"],
        json!({"type": "object", "name": "Tally"})
    );
}
