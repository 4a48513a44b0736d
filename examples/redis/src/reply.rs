//! Redis replies as asyncffi values, the way redis-py returns them with
//! `decode_responses=False`: bulk strings as `bytes`, integers as `int`, nil as `None`,
//! arrays as `list`, `OK` as `True`, other status replies as `str`. An error reply inside an
//! array (a pipeline's, say) becomes the error of the whole call.

use asyncffi::Value;

use crate::error::Error;

/// Converts one reply.
pub fn to_value(reply: redis::Value) -> Result<Value, Error> {
    Ok(match reply {
        redis::Value::Nil => Value::None,
        redis::Value::Int(i) => Value::Int(i),
        redis::Value::BulkString(b) => Value::Bytes(b),
        redis::Value::Array(items) | redis::Value::Set(items) => list(items)?,
        redis::Value::Push { data, .. } => list(data)?,
        redis::Value::SimpleString(s) => Value::Str(s),
        redis::Value::Okay => Value::Bool(true),
        redis::Value::Boolean(b) => Value::Bool(b),
        redis::Value::Double(x) => Value::Float(x),
        redis::Value::VerbatimString { text, .. } => Value::Bytes(text.into_bytes()),
        redis::Value::BigNumber(n) => Value::Str(format!("{n:?}")),
        redis::Value::Map(entries) => Value::List(
            entries
                .into_iter()
                .map(|(k, v)| Ok(Value::List(vec![to_value(k)?, to_value(v)?])))
                .collect::<Result<_, Error>>()?,
        ),
        redis::Value::Attribute { data, .. } => to_value(*data)?,
        redis::Value::ServerError(e) => return Err(Error::Redis(e.into())),
        other => Value::Str(format!("{other:?}")),
    })
}

fn list(items: Vec<redis::Value>) -> Result<Value, Error> {
    items
        .into_iter()
        .map(to_value)
        .collect::<Result<_, _>>()
        .map(Value::List)
}

/// HGETALL's reply as the flat list `[field, value, ...]` (a RESP3 map is flattened):
/// Python makes the dict, whose keys are bytes, which asyncffi dicts cannot carry.
pub fn flat_pairs(reply: redis::Value) -> Result<Value, Error> {
    match reply {
        redis::Value::Map(entries) => {
            let mut flat = Vec::with_capacity(entries.len() * 2);
            for (k, v) in entries {
                flat.push(to_value(k)?);
                flat.push(to_value(v)?);
            }
            Ok(Value::List(flat))
        }
        other => match to_value(other)? {
            Value::List(items) => Ok(Value::List(items)),
            other => Err(Error::Own(
                "type",
                format!("expected an array reply, got {other:?}"),
            )),
        },
    }
}
