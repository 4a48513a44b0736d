//! [`Arg`]: one argument of a Redis command as Python passes it. Redis arguments are byte
//! strings; `bytes` go as they are, `str` as its UTF-8, `int` and `float` as their decimal
//! text (as redis-py sends them).

use asyncffi::convert::{ListItem, TypeDesc};
use asyncffi::{AffiStatus, Failure, FromPython, Value};
use redis::{RedisWrite, ToRedisArgs, ToSingleRedisArg};

/// A key, a value or any other command argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arg(pub Vec<u8>);

impl FromPython for Arg {
    const TYPE: TypeDesc = TypeDesc::Any;

    fn from_value(value: Value) -> Result<Self, Failure> {
        match value {
            Value::Bytes(b) => Ok(Arg(b)),
            Value::Str(s) => Ok(Arg(s.into_bytes())),
            Value::Int(i) => Ok(Arg(i.to_string().into_bytes())),
            Value::Float(x) => Ok(Arg(format!("{x:?}").into_bytes())),
            other => Err(Failure::new(
                AffiStatus::ErrType,
                format!(
                    "expected bytes, str, int or float, got {}",
                    asyncffi::codec::type_name(&other)
                ),
            )),
        }
    }
}

impl ListItem for Arg {}

impl ToRedisArgs for Arg {
    fn write_redis_args<W: ?Sized + RedisWrite>(&self, out: &mut W) {
        out.write_arg(&self.0);
    }
}

impl ToSingleRedisArg for Arg {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_numbers_and_bytes_become_byte_strings() {
        assert_eq!(
            Arg::from_value(Value::Str("é".into())).unwrap().0,
            "é".as_bytes()
        );
        assert_eq!(Arg::from_value(Value::Int(-7)).unwrap().0, b"-7");
        assert_eq!(Arg::from_value(Value::Float(1.5)).unwrap().0, b"1.5");
        assert_eq!(
            Arg::from_value(Value::Bytes(vec![0, 255])).unwrap().0,
            [0, 255]
        );
        let err = Arg::from_value(Value::None).unwrap_err();
        assert_eq!(err.status, AffiStatus::ErrType);
    }
}
