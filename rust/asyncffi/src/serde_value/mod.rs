//! `serde` types crossing the boundary (feature `serde`): a `Serialize` result becomes a value
//! (structs as dicts, enums as serde renders them), a `Deserialize` parameter is read from one.
//!
//! Parameters are deserialized by `rmp-serde` straight from the buffer Python packed (no
//! `Value` in between). Results are serialized by this crate's own `Serializer` into a `Value`
//! (`ser`), which the port encodes once for Python; it renders data as `rmp-serde` does, so both
//! directions agree: structs are dicts by field name, unit variants their name, other variants
//! a one-entry dict `{variant: data}`.

mod ser;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::boundary::{AffiStatus, Failure};
use crate::codec;
use crate::value::{Error, Value};

/// `value` as a `Value`: what Python receives for it.
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value, Error> {
    value
        .serialize(ser::ToValue)
        .map_err(|e| Error::new("serialize", e.to_string()))
}

/// A `T` read from the encoding Python packed.
pub fn from_bytes<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Failure> {
    rmp_serde::from_slice(bytes).map_err(|e| Failure::new(AffiStatus::ErrType, e.to_string()))
}

/// A `T` read from a value (a stream item, a callable's result).
pub fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T, Failure> {
    let bytes =
        codec::encode(value).map_err(|e| Failure::new(AffiStatus::ErrType, e.to_string()))?;
    from_bytes(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Event {
        id: u64,
        name: String,
        tags: Vec<String>,
    }

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    enum Shape {
        Dot,
        Circle { r: f64 },
    }

    #[test]
    fn structs_are_dicts_and_enums_as_serde_renders_them() {
        let e = Event {
            id: 7,
            name: "n".into(),
            tags: vec!["a".into()],
        };
        let v = to_value(&e).unwrap();
        assert_eq!(
            v,
            Value::Dict(vec![
                ("id".into(), Value::Int(7)),
                ("name".into(), Value::Str("n".into())),
                ("tags".into(), Value::List(vec![Value::Str("a".into())])),
            ])
        );
        assert_eq!(from_value::<Event>(&v).unwrap(), e);
        assert_eq!(to_value(&Shape::Dot).unwrap(), Value::Str("Dot".into()));
        let c = to_value(&Shape::Circle { r: 1.5 }).unwrap();
        assert_eq!(
            c,
            Value::Dict(vec![(
                "Circle".into(),
                Value::Dict(vec![("r".into(), Value::Float(1.5))])
            )])
        );
        assert_eq!(from_value::<Shape>(&c).unwrap(), Shape::Circle { r: 1.5 });
    }

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    enum Every {
        Unit,
        New(i8),
        Tuple(u16, Option<bool>),
        Struct { c: char, raw: (), bytes: Vec<u8> },
    }

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Wrap(String);

    /// The serializer renders what `rmp-serde` renders, so results read back as parameters.
    #[test]
    fn the_serializer_agrees_with_rmp_serde() {
        let samples = vec![
            Every::Unit,
            Every::New(-3),
            Every::Tuple(9, None),
            Every::Tuple(9, Some(true)),
            Every::Struct {
                c: 'é',
                raw: (),
                bytes: vec![1, 2],
            },
        ];
        for sample in &samples {
            let direct = to_value(sample).unwrap();
            let via_rmp = codec::decode(&rmp_serde::to_vec_named(sample).unwrap()).unwrap();
            assert_eq!(direct, via_rmp, "{sample:?}");
            assert_eq!(&from_value::<Every>(&direct).unwrap(), sample);
        }
        let map: std::collections::BTreeMap<String, Wrap> =
            [("k".to_owned(), Wrap("v".into()))].into();
        assert_eq!(
            to_value(&map).unwrap(),
            Value::Dict(vec![("k".into(), Value::Str("v".into()))])
        );
        assert_eq!(
            to_value(&(1u8, 2.5f32)).unwrap(),
            Value::List(vec![Value::Int(1), Value::Float(2.5)])
        );
    }

    #[test]
    fn what_cannot_cross_is_an_error() {
        assert_eq!(to_value(&u64::MAX).unwrap(), Value::UInt(u64::MAX));
        assert_eq!(to_value(&u128::MAX).unwrap_err().kind, "serialize");
        let map: std::collections::HashMap<u8, u8> = [(1, 2)].into();
        assert_eq!(
            to_value(&map).unwrap_err().message,
            "dict keys must be str, got int"
        );
    }

    #[test]
    fn a_wrong_shape_is_a_type_error() {
        let err = from_value::<Event>(&Value::Int(3)).unwrap_err();
        assert_eq!(err.status, AffiStatus::ErrType);
    }
}
