//! The conversion traits between Rust types and what crosses the boundary.
//!
//! - [`FromPython`]: a type an exported function can take as a parameter, built from a
//!   [`Value`] Python sent.
//! - [`IntoPython`]: a type an exported function can return (or a stream can yield), turned
//!   into a [`Value`] Python receives.
//! - [`Scalar`]: the types that skip the codec and travel as one C scalar argument.
//!
//! Each implementation names its [`TypeDesc`] in an associated const, which the manifest
//! records, so a type alias is described by what it stands for. Implement the traits for your
//! own types to let them cross; any `serde` type crosses without them (feature `serde`): see
//! [`crate::serde_value`].
//!
//! Integers are range checked when a call is made: a value that does not fit fails the call
//! with `AffiStatus::ErrOverflow` (Python's `OverflowError`), naming the parameter and the
//! range.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use crate::boundary::{AffiStatus, Failure};
use crate::callable::PyCallable;
use crate::codec;
use crate::pystream::PyStream;
use crate::runtime::Runtime;
use crate::value::{Error, Value};

/// What a type looks like to Python; written into the manifest (see [`crate::manifest`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypeDesc {
    /// `None` (Rust `()`).
    None,
    /// `bool`.
    Bool,
    /// `int` limited to the Rust type's range.
    Int {
        /// The Rust type, such as `"u16"`.
        rust: &'static str,
        /// The smallest value accepted.
        min: i128,
        /// The largest value accepted.
        max: i128,
    },
    /// `float` (`"f32"` or `"f64"`).
    Float(&'static str),
    /// `str`.
    Str,
    /// `bytes`.
    Bytes,
    /// Any value (`asyncffi::Value`).
    Any,
    /// `list` of the inner type (Rust `Vec<T>`).
    List(&'static TypeDesc),
    /// `dict` with `str` keys and values of the inner type.
    Dict(&'static TypeDesc),
    /// `tuple` of these types (it arrives as a list).
    Tuple(&'static [TypeDesc]),
    /// The inner type or `None`.
    Optional(&'static TypeDesc),
    /// An exported object, by its Python-facing name.
    Object(&'static str),
    /// A Python callable (`asyncffi::PyCallable`).
    Callable,
    /// A Python async iterator (`asyncffi::PyStream`).
    AsyncIterator,
    /// A type converted through `serde`, by its Rust type name.
    Serde(&'static str),
    /// A `float` number of seconds (`std::time::Duration`); negative, NaN or infinite
    /// values are refused with `ValueError`.
    Duration,
    /// The runtime a call runs on (`asyncffi::Runtime`): a keyword-only `runtime: str`.
    Runtime,
    /// The rest of the positional arguments, `*args` (`asyncffi::Args`).
    Args,
}

/// A type that can come from Python.
pub trait FromPython: Sized {
    /// How the manifest describes it.
    const TYPE: TypeDesc;

    /// Converts a value Python sent. Errors say what was wrong; the caller adds which
    /// parameter it was.
    fn from_value(value: Value) -> Result<Self, Failure>;
}

/// A type that can go to Python.
pub trait IntoPython {
    /// How the manifest describes it.
    const TYPE: TypeDesc;

    /// Converts into a value Python receives; an error fails the call as a `RustError`.
    fn into_value(self) -> Result<Value, Error>;
}

/// A type that travels as one C scalar argument instead of an encoded buffer.
pub trait Scalar: FromPython {
    /// The C type of the argument.
    type Abi;
    /// Its name in the manifest: `"i64"`, `"u64"`, `"f64"` or `"u32"`.
    const ABI: &'static str;
    /// Converts the argument, checking its range.
    fn from_abi(raw: Self::Abi) -> Result<Self, Failure>;
}

fn wrong_type(expected: &str, got: &Value) -> Failure {
    Failure::new(
        AffiStatus::ErrType,
        format!("expected {expected}, got {}", codec::type_name(got)),
    )
}

fn out_of_range(value: impl std::fmt::Display, desc: TypeDesc) -> Failure {
    let TypeDesc::Int { rust, min, max } = desc else {
        unreachable!("only integer types are range checked")
    };
    Failure::new(
        AffiStatus::ErrOverflow,
        format!("{value} is out of range for {rust} ({min}..={max})"),
    )
}

macro_rules! int_impls {
    ($abi:ty, $abi_name:literal: $($t:ty),*) => {$(
        impl FromPython for $t {
            const TYPE: TypeDesc = TypeDesc::Int {
                rust: stringify!($t),
                min: <$t>::MIN as i128,
                max: <$t>::MAX as i128,
            };

            fn from_value(value: Value) -> Result<Self, Failure> {
                match value {
                    Value::Int(i) => <$t>::try_from(i).map_err(|_| out_of_range(i, <$t as FromPython>::TYPE)),
                    Value::UInt(u) => <$t>::try_from(u).map_err(|_| out_of_range(u, <$t as FromPython>::TYPE)),
                    other => Err(wrong_type("int", &other)),
                }
            }
        }

        impl Scalar for $t {
            type Abi = $abi;
            const ABI: &'static str = $abi_name;

            fn from_abi(raw: $abi) -> Result<Self, Failure> {
                <$t>::try_from(raw).map_err(|_| out_of_range(raw, <$t as FromPython>::TYPE))
            }
        }

        impl IntoPython for $t {
            const TYPE: TypeDesc = <$t as FromPython>::TYPE;

            #[allow(irrefutable_let_patterns, clippy::unnecessary_fallible_conversions)]
            fn into_value(self) -> Result<Value, Error> {
                // Every integer type fits in i64 or, above it, in u64.
                if let Ok(i) = i64::try_from(self) {
                    return Ok(Value::Int(i));
                }
                u64::try_from(self).map(Value::UInt).map_err(|_| {
                    Error::new("overflow", format!("{self} does not fit in 64 bits"))
                })
            }
        }
    )*};
}

int_impls!(i64, "i64": i8, i16, i32, i64, isize, u8, u16, u32);
int_impls!(u64, "u64": u64, usize);

// An int above i64::MAX arrives as `Value::UInt` (msgpack's uint64), so u64 and usize take
// their whole range in containers too.

macro_rules! float_impls {
    ($($t:ident),*) => {$(
        impl FromPython for $t {
            const TYPE: TypeDesc = TypeDesc::Float(stringify!($t));

            fn from_value(value: Value) -> Result<Self, Failure> {
                match value {
                    Value::Float(x) => <$t as Scalar>::from_abi(x),
                    // Python passes an int where a float is expected often enough.
                    Value::Int(i) => Ok(i as $t),
                    Value::UInt(u) => Ok(u as $t),
                    other => Err(wrong_type("float", &other)),
                }
            }
        }

        impl IntoPython for $t {
            const TYPE: TypeDesc = TypeDesc::Float(stringify!($t));

            fn into_value(self) -> Result<Value, Error> {
                Ok(Value::Float(self.into()))
            }
        }
    )*};
}

float_impls!(f32, f64);

impl Scalar for f64 {
    type Abi = f64;
    const ABI: &'static str = "f64";

    fn from_abi(raw: f64) -> Result<Self, Failure> {
        Ok(raw)
    }
}

impl Scalar for f32 {
    type Abi = f64;
    const ABI: &'static str = "f64";

    fn from_abi(raw: f64) -> Result<Self, Failure> {
        let narrow = raw as f32;
        if narrow.is_infinite() && raw.is_finite() {
            return Err(Failure::new(
                AffiStatus::ErrOverflow,
                format!("{raw:?} is out of range for f32"),
            ));
        }
        Ok(narrow)
    }
}

impl FromPython for bool {
    const TYPE: TypeDesc = TypeDesc::Bool;

    fn from_value(value: Value) -> Result<Self, Failure> {
        match value {
            Value::Bool(b) => Ok(b),
            other => Err(wrong_type("bool", &other)),
        }
    }
}

impl Scalar for bool {
    type Abi = u32;
    const ABI: &'static str = "u32";

    fn from_abi(raw: u32) -> Result<Self, Failure> {
        Ok(raw != 0)
    }
}

impl IntoPython for bool {
    const TYPE: TypeDesc = TypeDesc::Bool;

    fn into_value(self) -> Result<Value, Error> {
        Ok(Value::Bool(self))
    }
}

impl FromPython for String {
    const TYPE: TypeDesc = TypeDesc::Str;

    fn from_value(value: Value) -> Result<Self, Failure> {
        match value {
            Value::Str(s) => Ok(s),
            other => Err(wrong_type("str", &other)),
        }
    }
}

impl IntoPython for String {
    const TYPE: TypeDesc = TypeDesc::Str;

    fn into_value(self) -> Result<Value, Error> {
        Ok(Value::Str(self))
    }
}

impl IntoPython for &'static str {
    const TYPE: TypeDesc = TypeDesc::Str;

    fn into_value(self) -> Result<Value, Error> {
        Ok(Value::Str(self.to_owned()))
    }
}

impl FromPython for Vec<u8> {
    const TYPE: TypeDesc = TypeDesc::Bytes;

    fn from_value(value: Value) -> Result<Self, Failure> {
        match value {
            Value::Bytes(b) => Ok(b),
            other => Err(wrong_type("bytes", &other)),
        }
    }
}

impl IntoPython for Vec<u8> {
    const TYPE: TypeDesc = TypeDesc::Bytes;

    fn into_value(self) -> Result<Value, Error> {
        Ok(Value::Bytes(self))
    }
}

impl FromPython for () {
    const TYPE: TypeDesc = TypeDesc::None;

    fn from_value(value: Value) -> Result<Self, Failure> {
        match value {
            Value::None => Ok(()),
            other => Err(wrong_type("None", &other)),
        }
    }
}

impl IntoPython for () {
    const TYPE: TypeDesc = TypeDesc::None;

    fn into_value(self) -> Result<Value, Error> {
        Ok(Value::None)
    }
}

impl FromPython for Value {
    const TYPE: TypeDesc = TypeDesc::Any;

    fn from_value(value: Value) -> Result<Self, Failure> {
        Ok(value)
    }
}

impl IntoPython for Value {
    const TYPE: TypeDesc = TypeDesc::Any;

    fn into_value(self) -> Result<Value, Error> {
        Ok(self)
    }
}

impl<T: FromPython> FromPython for Option<T> {
    const TYPE: TypeDesc = TypeDesc::Optional(&T::TYPE);

    fn from_value(value: Value) -> Result<Self, Failure> {
        match value {
            Value::None => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

impl<T: IntoPython> IntoPython for Option<T> {
    const TYPE: TypeDesc = TypeDesc::Optional(&T::TYPE);

    fn into_value(self) -> Result<Value, Error> {
        self.map_or(Ok(Value::None), T::into_value)
    }
}

/// Implemented for the element types of `Vec<T>` lists: every type but `u8` (a `Vec<u8>` is
/// `bytes`).
pub trait ListItem {}

macro_rules! list_items {
    ($($t:ty),*) => {$(impl ListItem for $t {})*};
}

list_items!(
    i8,
    i16,
    i32,
    i64,
    isize,
    u16,
    u32,
    u64,
    usize,
    f32,
    f64,
    bool,
    String,
    Value,
    ()
);
impl ListItem for &'static str {}
impl<T> ListItem for Vec<T> {}
impl<T> ListItem for Option<T> {}
impl<K, V> ListItem for HashMap<K, V> {}
impl<K, V> ListItem for BTreeMap<K, V> {}
// No `Arc<T>`: an object crosses only as a whole parameter or result, never inside a container.

/// Which element made a container conversion fail.
fn at(failure: Failure, place: impl std::fmt::Display) -> Failure {
    Failure::new(failure.status, format!("{place}: {}", failure.message))
}

impl<T: FromPython + ListItem> FromPython for Vec<T> {
    const TYPE: TypeDesc = TypeDesc::List(&T::TYPE);

    fn from_value(value: Value) -> Result<Self, Failure> {
        match value {
            Value::List(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| T::from_value(item).map_err(|f| at(f, format_args!("item {i}"))))
                .collect(),
            other => Err(wrong_type("list", &other)),
        }
    }
}

impl<T: IntoPython + ListItem> IntoPython for Vec<T> {
    const TYPE: TypeDesc = TypeDesc::List(&T::TYPE);

    fn into_value(self) -> Result<Value, Error> {
        self.into_iter()
            .map(T::into_value)
            .collect::<Result<_, _>>()
            .map(Value::List)
    }
}

fn dict_entries<T: FromPython>(value: Value) -> Result<Vec<(String, T)>, Failure> {
    match value {
        Value::Dict(entries) => entries
            .into_iter()
            .map(|(k, v)| match T::from_value(v) {
                Ok(v) => Ok((k, v)),
                Err(f) => Err(at(f, format_args!("key {k:?}"))),
            })
            .collect(),
        other => Err(wrong_type("dict", &other)),
    }
}

fn dict_value<T: IntoPython>(entries: impl Iterator<Item = (String, T)>) -> Result<Value, Error> {
    entries
        .map(|(k, v)| v.into_value().map(|v| (k, v)))
        .collect::<Result<_, _>>()
        .map(Value::Dict)
}

impl<T: FromPython, S: std::hash::BuildHasher + Default> FromPython for HashMap<String, T, S> {
    const TYPE: TypeDesc = TypeDesc::Dict(&T::TYPE);

    fn from_value(value: Value) -> Result<Self, Failure> {
        Ok(dict_entries(value)?.into_iter().collect())
    }
}

impl<T: IntoPython, S> IntoPython for HashMap<String, T, S> {
    const TYPE: TypeDesc = TypeDesc::Dict(&T::TYPE);

    fn into_value(self) -> Result<Value, Error> {
        dict_value(self.into_iter())
    }
}

impl<T: FromPython> FromPython for BTreeMap<String, T> {
    const TYPE: TypeDesc = TypeDesc::Dict(&T::TYPE);

    fn from_value(value: Value) -> Result<Self, Failure> {
        Ok(dict_entries(value)?.into_iter().collect())
    }
}

impl<T: IntoPython> IntoPython for BTreeMap<String, T> {
    const TYPE: TypeDesc = TypeDesc::Dict(&T::TYPE);

    fn into_value(self) -> Result<Value, Error> {
        dict_value(self.into_iter())
    }
}

macro_rules! tuple_impls {
    ($(($($name:ident $i:tt),+))*) => {$(
        impl<$($name: FromPython),+> FromPython for ($($name,)+) {
            const TYPE: TypeDesc = TypeDesc::Tuple(&[$($name::TYPE),+]);

            fn from_value(value: Value) -> Result<Self, Failure> {
                const N: usize = [$($i),+].len();
                let Value::List(items) = value else {
                    return Err(wrong_type("tuple", &value));
                };
                let got = items.len();
                let mut items = items.into_iter();
                if got != N {
                    return Err(Failure::new(
                        AffiStatus::ErrValue,
                        format!("expected a tuple of {N} items, got {got}"),
                    ));
                }
                Ok(($($name::from_value(items.next().expect("length checked"))
                    .map_err(|f| at(f, format_args!("item {}", $i)))?,)+))
            }
        }

        impl<$($name: IntoPython),+> IntoPython for ($($name,)+) {
            const TYPE: TypeDesc = TypeDesc::Tuple(&[$($name::TYPE),+]);

            fn into_value(self) -> Result<Value, Error> {
                Ok(Value::List(vec![$(self.$i.into_value()?),+]))
            }
        }
        impl<$($name),+> ListItem for ($($name,)+) {}
    )*};
}

tuple_impls! {
    (A 0)
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, D 3)
    (A 0, B 1, C 2, D 3, E 4)
    (A 0, B 1, C 2, D 3, E 4, F 5)
}

/// A type exported with `#[asyncffi::object]`: it crosses as a handle into the object table
/// (`Arc<T>` as a parameter, `T` or `Arc<T>` as a result).
pub trait ExportedObject: Send + Sync + 'static {
    /// Its Python-facing name.
    const NAME: &'static str;
}

impl<T: ExportedObject> IntoPython for Arc<T> {
    const TYPE: TypeDesc = TypeDesc::Object(T::NAME);

    fn into_value(self) -> Result<Value, Error> {
        Ok(Value::Object(self))
    }
}

impl<T: ExportedObject> FromPython for Arc<T> {
    const TYPE: TypeDesc = TypeDesc::Object(T::NAME);

    fn from_value(value: Value) -> Result<Self, Failure> {
        match value {
            Value::Object(o) => o
                .downcast::<T>()
                .map_err(|_| Failure::new(AffiStatus::ErrType, format!("expected a {}", T::NAME))),
            other => Err(wrong_type(T::NAME, &other)),
        }
    }
}

/// An object handle argument: the object behind it.
pub fn object_from_handle<T: ExportedObject>(handle: u64) -> Result<Arc<T>, Failure> {
    crate::object::get::<T>(handle)
}

/// Seconds as a `Duration`: a finite number >= 0, else `AffiStatus::ErrValue` (Python's
/// `ValueError`).
fn seconds(raw: f64) -> Result<Duration, Failure> {
    Duration::try_from_secs_f64(raw).map_err(|_| {
        Failure::new(
            AffiStatus::ErrValue,
            format!("seconds must be a finite number >= 0, got {raw}"),
        )
    })
}

impl FromPython for Duration {
    const TYPE: TypeDesc = TypeDesc::Duration;

    fn from_value(value: Value) -> Result<Self, Failure> {
        match value {
            Value::Float(x) => seconds(x),
            Value::Int(i) => seconds(i as f64),
            other => Err(wrong_type("float (seconds)", &other)),
        }
    }
}

/// A `Duration` parameter travels as one `double` of seconds.
impl Scalar for Duration {
    type Abi = f64;
    const ABI: &'static str = "f64";

    fn from_abi(raw: f64) -> Result<Self, Failure> {
        seconds(raw)
    }
}

impl IntoPython for Duration {
    const TYPE: TypeDesc = TypeDesc::Duration;

    fn into_value(self) -> Result<Value, Error> {
        Ok(Value::Float(self.as_secs_f64()))
    }
}

impl ListItem for Duration {}

/// The runtime a call runs on, chosen by the caller: a parameter of this type is the
/// keyword-only `runtime: str` of the Python function (its default is the export's
/// `runtime` option), the call is spawned on it, and the function receives it.
impl FromPython for Runtime {
    const TYPE: TypeDesc = TypeDesc::Runtime;

    fn from_value(value: Value) -> Result<Self, Failure> {
        match value {
            Value::Str(s) if s == "tokio" => Ok(Runtime::Tokio),
            Value::Str(s) if s == "async-std" => Ok(Runtime::AsyncStd),
            Value::Str(s) if s == "loop" => Ok(Runtime::Loop),
            Value::Str(s) => Runtime::named(&s),
            other => Err(wrong_type(
                "'tokio', 'async-std', 'loop' or a registered runtime",
                &other,
            )),
        }
    }
}

/// A runtime travels as its C value (`uint32_t`, as `affi_runtimes` lists it).
impl Scalar for Runtime {
    type Abi = u32;
    const ABI: &'static str = "runtime";

    fn from_abi(raw: u32) -> Result<Self, Failure> {
        Runtime::from_raw(raw)
    }
}

/// The rest of the positional arguments of a call (`*args` in Python), in order. A parameter
/// of this type must be the last positional one; it travels as one packed list.
#[derive(Debug, Default, PartialEq)]
pub struct Args(pub Vec<Value>);

impl Args {
    /// The arguments.
    pub fn into_vec(self) -> Vec<Value> {
        self.0
    }
}

impl FromPython for Args {
    const TYPE: TypeDesc = TypeDesc::Args;

    fn from_value(value: Value) -> Result<Self, Failure> {
        match value {
            Value::List(items) => Ok(Args(items)),
            Value::None => Ok(Args(Vec::new())),
            other => Err(wrong_type("a list of arguments", &other)),
        }
    }
}

/// Describes `PyCallable` in the manifest; it arrives as a handle, not as a value.
impl FromPython for PyCallable {
    const TYPE: TypeDesc = TypeDesc::Callable;

    fn from_value(value: Value) -> Result<Self, Failure> {
        Err(wrong_type("a callable (passed by handle)", &value))
    }
}

/// Describes `PyStream` in the manifest; it arrives as a handle, not as a value.
impl FromPython for PyStream {
    const TYPE: TypeDesc = TypeDesc::AsyncIterator;

    fn from_value(value: Value) -> Result<Self, Failure> {
        Err(wrong_type("an async iterator (passed by handle)", &value))
    }
}

/// An error type that chooses the `kind` of the `RustError` Python raises for it. Without
/// it, an exported function's error of a `Display` type has its type's name as its kind.
pub trait IntoError {
    /// The error to raise.
    fn into_error(self) -> Error;
}

impl IntoError for Error {
    fn into_error(self) -> Error {
        self
    }
}

/// The kind is the `ErrorKind`'s name, such as `"NotFound"` or `"ConnectionRefused"`.
impl IntoError for std::io::Error {
    fn into_error(self) -> Error {
        Error::new(format!("{:?}", self.kind()), self.to_string())
    }
}

/// The Python exception is raised again as it was.
impl IntoError for crate::callable::PythonError {
    fn into_error(self) -> Error {
        Error::from(self)
    }
}

/// An error Python raises as one of its built-in exceptions rather than as a `RustError`: for
/// a bad argument found only once the call runs. Its kind is `"builtins.ValueError"` (and so
/// on), which the Python side turns into the exception.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuiltinError {
    /// `ValueError(message)`.
    Value(String),
    /// `TypeError(message)`.
    Type(String),
    /// `OverflowError(message)`.
    Overflow(String),
}

impl IntoError for BuiltinError {
    fn into_error(self) -> Error {
        let (kind, message) = match self {
            BuiltinError::Value(m) => ("builtins.ValueError", m),
            BuiltinError::Type(m) => ("builtins.TypeError", m),
            BuiltinError::Overflow(m) => ("builtins.OverflowError", m),
        };
        Error::new(kind, message)
    }
}

impl From<BuiltinError> for Error {
    fn from(error: BuiltinError) -> Error {
        error.into_error()
    }
}

impl std::fmt::Display for BuiltinError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (BuiltinError::Value(m) | BuiltinError::Type(m) | BuiltinError::Overflow(m)) = self;
        f.write_str(m)
    }
}

/// Prefixes a failure with the parameter it came from.
pub fn in_param(failure: Failure, param: &str) -> Failure {
    at(failure, format_args!("argument `{param}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_range_checked_with_the_range_named() {
        assert_eq!(<u16 as Scalar>::from_abi(65535), Ok(65535));
        let err = <u16 as Scalar>::from_abi(65536).unwrap_err();
        assert_eq!(err.status, AffiStatus::ErrOverflow);
        assert_eq!(err.message, "65536 is out of range for u16 (0..=65535)");
        let err = <i8 as FromPython>::from_value(Value::Int(-129)).unwrap_err();
        assert_eq!(err.message, "-129 is out of range for i8 (-128..=127)");
        assert_eq!(u64::MAX.into_value(), Ok(Value::UInt(u64::MAX)));
        assert_eq!((i64::MAX as u64).into_value(), Ok(Value::Int(i64::MAX)));
        assert_eq!(
            <u64 as FromPython>::from_value(Value::UInt(u64::MAX)),
            Ok(u64::MAX)
        );
        let err = <i64 as FromPython>::from_value(Value::UInt(1 << 63)).unwrap_err();
        assert_eq!(err.status, AffiStatus::ErrOverflow);
        assert_eq!(<usize as Scalar>::from_abi(7), Ok(7));
    }

    #[test]
    fn containers_name_the_failing_item() {
        let v = Value::List(vec![Value::Int(1), Value::Str("x".into())]);
        let err = Vec::<u32>::from_value(v).unwrap_err();
        assert_eq!(err.status, AffiStatus::ErrType);
        assert_eq!(err.message, "item 1: expected int, got str");
        let d = Value::Dict(vec![("a".into(), Value::Int(300))]);
        let err = BTreeMap::<String, u8>::from_value(d).unwrap_err();
        assert_eq!(
            err.message,
            "key \"a\": 300 is out of range for u8 (0..=255)"
        );
    }

    #[test]
    fn durations_are_finite_and_non_negative_seconds() {
        assert_eq!(
            <Duration as Scalar>::from_abi(1.5),
            Ok(Duration::from_millis(1500))
        );
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            let err = <Duration as Scalar>::from_abi(bad).unwrap_err();
            assert_eq!(err.status, AffiStatus::ErrValue);
            assert!(err
                .message
                .starts_with("seconds must be a finite number >= 0"));
        }
        assert_eq!(
            Duration::from_value(Value::Int(2)),
            Ok(Duration::from_secs(2))
        );
        assert_eq!(
            Duration::from_millis(250).into_value().unwrap(),
            Value::Float(0.25)
        );
    }

    #[test]
    fn builtin_errors_name_the_python_exception() {
        let e = Error::from(BuiltinError::Value("bad n".into()));
        assert_eq!(e, Error::new("builtins.ValueError", "bad n"));
        assert_eq!(
            BuiltinError::Overflow("big".into()).into_error(),
            Error::new("builtins.OverflowError", "big")
        );
    }

    #[test]
    fn args_are_a_list_or_nothing() {
        let args = Args::from_value(Value::List(vec![Value::Int(1)])).unwrap();
        assert_eq!(args.into_vec(), vec![Value::Int(1)]);
        assert_eq!(Args::from_value(Value::None), Ok(Args::default()));
        assert_eq!(
            Args::from_value(Value::Int(1)).unwrap_err().status,
            AffiStatus::ErrType
        );
        assert_eq!(<Runtime as Scalar>::from_abi(0), Ok(Runtime::Tokio));
        assert!(<Runtime as Scalar>::from_abi(99).is_err());
    }

    #[test]
    fn descriptors_compose() {
        assert_eq!(
            <Option<Vec<String>> as FromPython>::TYPE,
            TypeDesc::Optional(&TypeDesc::List(&TypeDesc::Str))
        );
        assert_eq!(
            <(bool, f32) as IntoPython>::TYPE,
            TypeDesc::Tuple(&[TypeDesc::Bool, TypeDesc::Float("f32")])
        );
    }
}
