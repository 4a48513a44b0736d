//! Generated shims called through the C ABI as Python calls them: every supported type both
//! ways, errors and their kinds, panics, sync and stream functions, Python callables.

#![deny(unsafe_op_in_unsafe_fn, missing_docs)]

mod common;

use std::collections::{BTreeMap, HashMap};

use asyncffi::{PyCallable, PyStream, Stream, Value};
use common::{call_sync, pack, s, Ended, Port};

/// Adds two ints.
#[asyncffi::export]
async fn add(a: i64, b: i64) -> i64 {
    a.wrapping_add(b)
}

#[asyncffi::export]
#[allow(clippy::too_many_arguments)]
async fn narrow(a: i8, b: i16, c: i32, d: u8, e: u16, f: u32, g: u64, h: usize, i: isize) -> i64 {
    i64::from(a)
        + i64::from(b)
        + i64::from(c)
        + i64::from(d)
        + i64::from(e)
        + i64::from(f)
        + g as i64
        + h as i64
        + i as i64
}

#[asyncffi::export]
async fn floats(x: f32, y: f64, flag: bool) -> (f32, f64, bool) {
    (x, y, !flag)
}

#[asyncffi::export]
async fn texts(text: String, raw: Vec<u8>) -> (String, Vec<u8>) {
    (text.to_uppercase(), raw.into_iter().rev().collect())
}

#[asyncffi::export]
async fn containers(
    list: Vec<Vec<u16>>,
    map: HashMap<String, i32>,
    tree: BTreeMap<String, Option<String>>,
    pair: (bool, String),
) -> (
    u64,
    BTreeMap<String, i32>,
    BTreeMap<String, Option<String>>,
    (String, bool),
) {
    let total = list.iter().flatten().map(|&x| u64::from(x)).sum();
    (total, map.into_iter().collect(), tree, (pair.1, pair.0))
}

#[asyncffi::export]
async fn any(value: Value) -> Value {
    Value::List(vec![value])
}

#[asyncffi::export]
async fn nothing() {}

/// A keyword as a parameter name.
#[asyncffi::export]
async fn keyword(r#type: String) -> String {
    r#type
}

/// Trailing options default to None.
#[asyncffi::export]
async fn greet(name: String, greeting: Option<String>, times: Option<u8>) -> String {
    let g = greeting.unwrap_or_else(|| "hello".into());
    vec![format!("{g} {name}"); times.unwrap_or(1).into()].join(", ")
}

type Port16 = u16;

#[asyncffi::export]
async fn alias(p: Port16) -> Port16 {
    p
}

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct Event {
    id: u64,
    name: String,
    tags: Vec<String>,
}

#[derive(serde::Serialize, serde::Deserialize)]
enum Shape {
    Dot,
    Circle { r: f64 },
}

#[asyncffi::export]
async fn rename(event: Event, name: String) -> Event {
    Event { name, ..event }
}

#[asyncffi::export]
async fn shapes(shapes: Vec<Shape>) -> Vec<Shape> {
    shapes.into_iter().rev().collect()
}

// === Errors ===

#[derive(Debug)]
struct MyError(String);

impl std::fmt::Display for MyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "my error: {}", self.0)
    }
}

enum DbError {
    Missing(String),
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbError::Missing(k) => write!(f, "no key {k}"),
        }
    }
}

impl asyncffi::IntoError for DbError {
    fn into_error(self) -> asyncffi::Error {
        asyncffi::Error::new("missing", self.to_string())
    }
}

#[asyncffi::export]
async fn fails_display(why: String) -> Result<u8, MyError> {
    Err(MyError(why))
}

#[asyncffi::export]
async fn fails_io() -> Result<Vec<String>, std::io::Error> {
    Err(std::io::Error::new(std::io::ErrorKind::NotFound, "gone"))
}

#[asyncffi::export]
async fn fails_io_alias(ok: bool) -> std::io::Result<u8> {
    if ok {
        Ok(1)
    } else {
        Err(std::io::ErrorKind::ConnectionRefused.into())
    }
}

#[asyncffi::export]
async fn fails_chosen(key: String) -> Result<(), DbError> {
    Err(DbError::Missing(key))
}

#[asyncffi::export(error_kind = "db")]
async fn fails_attr() -> Result<(), MyError> {
    Err(MyError("x".into()))
}

#[asyncffi::export]
async fn fails_affi() -> asyncffi::Result<i64> {
    Err(asyncffi::Error::new("custom", "text"))
}

#[asyncffi::export]
async fn panics(message: String) -> u8 {
    panic!("{message}")
}

// === Sync ===

#[asyncffi::export]
fn version() -> &'static str {
    "1.2.3"
}

#[asyncffi::export]
fn sync_add(a: u32, b: u32) -> Result<u32, MyError> {
    a.checked_add(b).ok_or_else(|| MyError("overflow".into()))
}

#[asyncffi::export]
fn sync_panics() -> bool {
    panic!("sync boom")
}

#[asyncffi::export]
fn sync_empty() -> String {
    String::new()
}

// === Streams ===

#[asyncffi::export(runtime = "async-std")]
fn events(n: u32, fail_at: Option<u32>) -> impl Stream<Item = Result<Event, MyError>> {
    asyncffi::stream::iter((0..n).map(move |i| {
        if Some(i) == fail_at {
            return Err(MyError(format!("at {i}")));
        }
        Ok(Event {
            id: i.into(),
            name: format!("e{i}"),
            tags: vec!["t".into()],
        })
    }))
}

#[asyncffi::export]
fn squares(n: i64) -> impl Stream<Item = i64> {
    asyncffi::stream::unfold(0, move |i| async move { (i < n).then(|| (i * i, i + 1)) })
}

// === Python callables ===

#[asyncffi::export]
async fn for_each(handler: PyCallable, n: u32) -> Result<u64, asyncffi::Error> {
    let mut total = 0;
    for i in 0..n {
        if let Value::Int(x) = handler.call(vec![Value::Int(i.into())]).await? {
            total += x as u64;
        }
    }
    Ok(total)
}

#[asyncffi::export(runtime = "loop")]
async fn on_loop(x: i64) -> i64 {
    asyncffi::stream::yield_now().await;
    x + 1
}

#[asyncffi::export]
async fn count_items(items: PyStream) -> u64 {
    let _ = items;
    0
}

// === Tests ===

fn buf(v: &Value) -> (Vec<u8>, usize) {
    let b = pack(v);
    let n = b.len();
    (b, n)
}

#[test]
fn scalars_travel_as_c_scalars() {
    let _serial = common::serial();
    let port = Port::open();
    assert_eq!(
        port.call(|p, t| exports_add(p, t, 2, 40)),
        Ok(Ended::Ok(Value::Int(42)))
    );
    let all = port.call(|p, t| exports_narrow(p, t, -1, -2, -3, 4, 5, 6, 7, 8, -9));
    assert_eq!(all, Ok(Ended::Ok(Value::Int(15))));
    let f = port.call(|p, t| exports_floats(p, t, 1.5, 2.25, 1));
    let want = Value::List(vec![
        Value::Float(1.5),
        Value::Float(2.25),
        Value::Bool(false),
    ]);
    assert_eq!(f, Ok(Ended::Ok(want)));
}

#[test]
fn integers_out_of_range_fail_the_call_naming_the_parameter() {
    let _serial = common::serial();
    let port = Port::open();
    let status = port.call(|p, t| exports_narrow(p, t, 0, 0, 0, 256, 0, 0, 0, 0, 0));
    assert_eq!(status, Err(asyncffi::AffiStatus::ErrOverflow as i64));
    assert_eq!(
        common::last_error(),
        "argument `d`: 256 is out of range for u8 (0..=255)"
    );
    let status = port.call(|p, t| exports_narrow(p, t, 0, 0, 0, 0, 0, -1, 0, 0, 0));
    assert_eq!(status, Err(asyncffi::AffiStatus::ErrOverflow as i64));
    assert_eq!(
        common::last_error(),
        "argument `f`: -1 is out of range for u32 (0..=4294967295)"
    );
    let status = port.call(|p, t| exports_floats(p, t, 1e300, 0.0, 0));
    assert_eq!(status, Err(asyncffi::AffiStatus::ErrOverflow as i64));
    assert_eq!(
        common::last_error(),
        "argument `x`: 1e300 is out of range for f32"
    );
    let (b, n) = buf(&Value::List(vec![Value::List(vec![Value::Int(70000)])]));
    let empty = pack(&Value::Dict(vec![]));
    let pair = pack(&Value::List(vec![Value::Bool(true), s("x")]));
    let status = port.call(|p, t| unsafe {
        exports_containers(
            p,
            t,
            b.as_ptr(),
            n,
            empty.as_ptr(),
            empty.len(),
            empty.as_ptr(),
            empty.len(),
            pair.as_ptr(),
            pair.len(),
        )
    });
    assert_eq!(status, Err(asyncffi::AffiStatus::ErrOverflow as i64));
    assert_eq!(
        common::last_error(),
        "argument `list`: item 0: item 0: 70000 is out of range for u16 (0..=65535)"
    );
}

#[test]
fn text_bytes_and_containers_travel_encoded_both_ways() {
    let _serial = common::serial();
    let port = Port::open();
    let (text, tn) = buf(&s("héllo"));
    let (raw, rn) = buf(&Value::Bytes(vec![1, 2, 3]));
    let got = port.call(|p, t| unsafe { exports_texts(p, t, text.as_ptr(), tn, raw.as_ptr(), rn) });
    let want = Value::List(vec![s("HÉLLO"), Value::Bytes(vec![3, 2, 1])]);
    assert_eq!(got, Ok(Ended::Ok(want)));

    let list = pack(&Value::List(vec![
        Value::List(vec![Value::Int(1), Value::Int(2)]),
        Value::List(vec![Value::Int(3)]),
    ]));
    let map = pack(&Value::Dict(vec![
        ("b".into(), Value::Int(-2)),
        ("a".into(), Value::Int(1)),
    ]));
    let tree = pack(&Value::Dict(vec![
        ("k".into(), Value::None),
        ("j".into(), s("v")),
    ]));
    let pair = pack(&Value::List(vec![Value::Bool(true), s("x")]));
    let got = port.call(|p, t| unsafe {
        exports_containers(
            p,
            t,
            list.as_ptr(),
            list.len(),
            map.as_ptr(),
            map.len(),
            tree.as_ptr(),
            tree.len(),
            pair.as_ptr(),
            pair.len(),
        )
    });
    let want = Value::List(vec![
        Value::Int(6),
        Value::Dict(vec![
            ("a".into(), Value::Int(1)),
            ("b".into(), Value::Int(-2)),
        ]),
        Value::Dict(vec![("j".into(), s("v")), ("k".into(), Value::None)]),
        Value::List(vec![s("x"), Value::Bool(true)]),
    ]);
    assert_eq!(got, Ok(Ended::Ok(want)));

    let v = Value::Dict(vec![("x".into(), Value::Float(0.5))]);
    let (b, n) = buf(&v);
    // A `Value` parameter is tagged: a packed value, or a scalar without the codec.
    let packed = asyncffi::port::AffiTag::Packed as u32;
    let got = port.call(|p, t| unsafe { exports_any(p, t, packed, 0, 0.0, b.as_ptr(), n) });
    assert_eq!(got, Ok(Ended::Ok(Value::List(vec![v]))));
    let int = asyncffi::port::AffiTag::Int as u32;
    let got = port.call(|p, t| unsafe { exports_any(p, t, int, 7, 0.0, std::ptr::null(), 0) });
    assert_eq!(got, Ok(Ended::Ok(Value::List(vec![Value::Int(7)]))));
    assert_eq!(
        port.call(|p, t| exports_nothing(p, t)),
        Ok(Ended::Ok(Value::None))
    );
    let (b, n) = buf(&s("kw"));
    let got = port.call(|p, t| unsafe { exports_keyword(p, t, b.as_ptr(), n) });
    assert_eq!(got, Ok(Ended::Ok(s("kw"))));
    // An alias of a scalar is converted as what it stands for, but travels as a buffer (its
    // shape is read from how the type is written).
    let (b, n) = buf(&Value::Int(8080));
    let got = port.call(|p, t| unsafe { exports_alias(p, t, b.as_ptr(), n) });
    assert_eq!(got, Ok(Ended::Ok(Value::Int(8080))));
}

#[test]
fn wrong_types_are_type_errors() {
    let _serial = common::serial();
    let port = Port::open();
    let (text, tn) = buf(&Value::Int(3));
    let got =
        port.call(|p, t| unsafe { exports_texts(p, t, text.as_ptr(), tn, text.as_ptr(), tn) });
    assert_eq!(got, Err(asyncffi::AffiStatus::ErrType as i64));
    assert_eq!(
        common::last_error(),
        "argument `text`: expected str, got int"
    );
    let garbage = [0xc1u8];
    let packed = asyncffi::port::AffiTag::Packed as u32;
    let got = port.call(|p, t| unsafe { exports_any(p, t, packed, 0, 0.0, garbage.as_ptr(), 1) });
    assert_eq!(got, Err(asyncffi::AffiStatus::ErrValue as i64));
    let got = port.call(|p, t| unsafe { exports_any(p, t, packed, 0, 0.0, std::ptr::null(), 4) });
    assert_eq!(got, Err(asyncffi::AffiStatus::ErrValue as i64));
}

#[test]
fn options_default_to_none_with_an_empty_buffer() {
    let _serial = common::serial();
    let port = Port::open();
    let (name, nn) = buf(&s("ann"));
    let null = std::ptr::null();
    let got = port.call(|p, t| unsafe { exports_greet(p, t, name.as_ptr(), nn, null, 0, null, 0) });
    assert_eq!(got, Ok(Ended::Ok(s("hello ann"))));
    let (hi, hn) = buf(&s("hi"));
    let (two, twn) = buf(&Value::Int(2));
    let got = port.call(|p, t| unsafe {
        exports_greet(p, t, name.as_ptr(), nn, hi.as_ptr(), hn, two.as_ptr(), twn)
    });
    assert_eq!(got, Ok(Ended::Ok(s("hi ann, hi ann"))));
    let (nil, niln) = buf(&Value::None);
    let got = port.call(|p, t| unsafe {
        exports_greet(
            p,
            t,
            name.as_ptr(),
            nn,
            nil.as_ptr(),
            niln,
            two.as_ptr(),
            twn,
        )
    });
    assert_eq!(got, Ok(Ended::Ok(s("hello ann, hello ann"))));
}

#[test]
fn serde_types_cross_as_dicts_and_as_serde_renders_enums() {
    let _serial = common::serial();
    let port = Port::open();
    let event = Value::Dict(vec![
        ("id".into(), Value::Int(7)),
        ("name".into(), s("old")),
        ("tags".into(), Value::List(vec![s("a")])),
    ]);
    let (e, en) = buf(&event);
    let (name, nn) = buf(&s("new"));
    let got = port.call(|p, t| unsafe { exports_rename(p, t, e.as_ptr(), en, name.as_ptr(), nn) });
    let Value::Dict(mut want) = event.clone() else {
        unreachable!()
    };
    want[1].1 = s("new");
    assert_eq!(got, Ok(Ended::Ok(Value::Dict(want))));

    let shapes = Value::List(vec![
        s("Dot"),
        Value::Dict(vec![(
            "Circle".into(),
            Value::Dict(vec![("r".into(), Value::Float(2.0))]),
        )]),
    ]);
    let (b, n) = buf(&shapes);
    let got = port.call(|p, t| unsafe { exports_shapes(p, t, b.as_ptr(), n) });
    let Value::List(mut rev) = shapes else {
        unreachable!()
    };
    rev.reverse();
    assert_eq!(got, Ok(Ended::Ok(Value::List(rev))));

    let (bad, bn) = buf(&Value::Dict(vec![("id".into(), s("x"))]));
    let got =
        port.call(|p, t| unsafe { exports_rename(p, t, bad.as_ptr(), bn, name.as_ptr(), nn) });
    assert_eq!(got, Err(asyncffi::AffiStatus::ErrType as i64));
}

#[test]
fn errors_carry_their_kind() {
    let _serial = common::serial();
    let port = Port::open();
    let (why, wn) = buf(&s("because"));
    let got = port.call(|p, t| unsafe { exports_fails_display(p, t, why.as_ptr(), wn) });
    assert_eq!(
        got,
        Ok(Ended::Error("MyError".into(), "my error: because".into()))
    );
    assert_eq!(
        port.call(|p, t| exports_fails_io(p, t)),
        Ok(Ended::Error("NotFound".into(), "gone".into()))
    );
    let got = port.call(|p, t| exports_fails_io_alias(p, t, 0));
    assert_eq!(
        got,
        Ok(Ended::Error(
            "ConnectionRefused".into(),
            "connection refused".into()
        ))
    );
    assert_eq!(
        port.call(|p, t| exports_fails_io_alias(p, t, 1)),
        Ok(Ended::Ok(Value::Int(1)))
    );
    let (key, kn) = buf(&s("k"));
    let got = port.call(|p, t| unsafe { exports_fails_chosen(p, t, key.as_ptr(), kn) });
    assert_eq!(got, Ok(Ended::Error("missing".into(), "no key k".into())));
    let got = port.call(|p, t| exports_fails_attr(p, t));
    assert_eq!(got, Ok(Ended::Error("db".into(), "my error: x".into())));
    let got = port.call(|p, t| exports_fails_affi(p, t));
    assert_eq!(got, Ok(Ended::Error("custom".into(), "text".into())));
    let (m, mn) = buf(&s("kaboom"));
    let got = port.call(|p, t| unsafe { exports_panics(p, t, m.as_ptr(), mn) });
    assert_eq!(got, Ok(Ended::Panic("kaboom".into())));
}

#[test]
fn sync_functions_answer_at_once() {
    let _serial = common::serial();
    let before = common::stats().live_values;
    assert_eq!(
        call_sync(|out| unsafe { exports_version(out) }),
        Ok(Ended::Ok(s("1.2.3")))
    );
    assert_eq!(
        call_sync(|out| unsafe { exports_sync_add(2, 3, out) }),
        Ok(Ended::Ok(Value::Int(5)))
    );
    let got = call_sync(|out| unsafe { exports_sync_add(u32::MAX.into(), 1, out) });
    assert_eq!(
        got,
        Ok(Ended::Error("MyError".into(), "my error: overflow".into()))
    );
    let got = call_sync(|out| unsafe { exports_sync_add(-5, 1, out) });
    assert_eq!(got, Err(asyncffi::AffiStatus::ErrOverflow as i32));
    assert_eq!(
        common::last_error(),
        "argument `a`: -5 is out of range for u32 (0..=4294967295)"
    );
    assert_eq!(
        call_sync(|out| unsafe { exports_sync_panics(out) }),
        Ok(Ended::Panic("sync boom".into()))
    );
    assert_eq!(
        call_sync(|out| unsafe { exports_sync_empty(out) }),
        Ok(Ended::Ok(s("")))
    );
    let got = unsafe { exports_version(std::ptr::null_mut()) };
    assert_eq!(got, asyncffi::AffiStatus::ErrValue as i32);
    assert_eq!(
        asyncffi::ffi::affi_result_free(std::ptr::null()),
        asyncffi::AffiStatus::ErrValue as i32
    );
    assert_eq!(
        common::stats().live_values,
        before,
        "every sync payload was freed"
    );
}

#[test]
fn streams_yield_converted_items_and_end_with_errors() {
    let _serial = common::serial();
    let port = Port::open();
    let (items, end) = port.stream(|p, t| exports_squares(p, t, 4, 0));
    assert_eq!(items, [0, 1, 4, 9].map(Value::Int));
    assert_eq!(end, Ended::Ok(Value::None));
    let null = std::ptr::null();
    let (items, end) = port.stream(|p, t| unsafe { exports_events(p, t, 3, null, 0, 0) });
    assert_eq!(end, Ended::Ok(Value::None));
    assert_eq!(items.len(), 3);
    assert_eq!(
        items[2],
        Value::Dict(vec![
            ("id".into(), Value::Int(2)),
            ("name".into(), s("e2")),
            ("tags".into(), Value::List(vec![s("t")])),
        ])
    );
    let (at, an) = buf(&Value::Int(1));
    let (items, end) = port.stream(|p, t| unsafe { exports_events(p, t, 3, at.as_ptr(), an, 0) });
    assert_eq!(items.len(), 1);
    assert_eq!(end, Ended::Error("MyError".into(), "my error: at 1".into()));
    let (items, end) = port.stream(|p, t| exports_squares(p, t, 4, 0));
    assert_eq!(items, [0, 1, 4, 9].map(Value::Int));
    assert_eq!(end, Ended::Ok(Value::None));
}

#[test]
fn callables_are_adopted_from_their_handle_and_called() {
    let _serial = common::serial();
    let port = Port::open();
    let mut calls = Vec::new();
    let got = port.call_answering(|p, t| exports_for_each(p, t, 77, 3), &mut |c| {
        assert_eq!(c.int_value, 77, "the lent callable's id");
        let Value::List(args) = common::decode(c) else {
            panic!("no argument list")
        };
        let Value::Int(i) = args[0] else {
            panic!("not an int")
        };
        calls.push(i);
        // SAFETY: an int answer uses no data pointer.
        let status = unsafe {
            asyncffi::ffi::affi_call_complete(
                0,
                c.token,
                asyncffi::port::AffiOutcome::Ok as i32,
                asyncffi::port::AffiTag::Int as u32,
                i * 10,
                0.0,
                std::ptr::null(),
                0,
            )
        };
        assert_eq!(status, 0);
    });
    assert_eq!(got, Ok(Ended::Ok(Value::Int(30))));
    assert_eq!(calls, [0, 1, 2]);
}

#[test]
fn the_loop_runtime_is_polled_by_the_loop() {
    let _serial = common::serial();
    let port = Port::open();
    assert_eq!(
        port.call(|p, t| exports_on_loop(p, t, 41)),
        Ok(Ended::Ok(Value::Int(42)))
    );
}

#[test]
fn handle_parameters_need_a_live_port() {
    let _serial = common::serial();
    let closed = Port::open().0; // closed again when the guard drops here
    let got = exports_count_items(closed, 1, 9, 0);
    assert_eq!(got, asyncffi::AffiStatus::ErrClosed as i64);
    assert!(
        common::last_error().starts_with("argument `items`"),
        "{}",
        common::last_error()
    );
}
