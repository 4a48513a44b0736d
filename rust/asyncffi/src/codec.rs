//! The container encoding: a strict subset of MessagePack, one buffer per value.
//!
//! Python packs arguments with the `msgpack` package (`use_bin_type=True`) and unpacks results
//! with it; this module is the Rust half. Only what `Value` can hold is accepted: nil, bool,
//! int (anything outside `i64` is an overflow error), float32/64, str (UTF-8 checked), bin,
//! array and map with str keys. Extension types and non-str keys are rejected with a message
//! naming the problem. Nesting is limited to `MAX_DEPTH` levels both ways so hostile input
//! cannot overflow the stack, and declared lengths are checked against the bytes present
//! before anything is allocated.

use crate::value::Value;

/// Deepest nesting accepted: far beyond real data, and shallow enough that the recursive
/// encoder and decoder stay well inside a 2 MiB thread stack even in debug builds.
pub const MAX_DEPTH: usize = 128;

/// Why a buffer could not be decoded (or a value encoded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodecError {
    /// An integer outside the signed 64-bit range.
    Overflow(String),
    /// A value of a type the boundary does not carry (non-str key, extension type, object).
    Type(String),
    /// Malformed input: truncated, trailing bytes, invalid UTF-8, too deep.
    Invalid(String),
}

impl std::fmt::Display for CodecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CodecError::Overflow(m) | CodecError::Type(m) | CodecError::Invalid(m) => {
                f.write_str(m)
            }
        }
    }
}

/// Encodes `value` as one MessagePack buffer. Fails on objects (they travel only at the top
/// level of a result, as handles) and on nesting deeper than `MAX_DEPTH`.
pub fn encode(value: &Value) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(64);
    write_value(&mut out, value, 0)?;
    Ok(out)
}

/// Appends the encoding of `value` to `out` (as `encode` does), leaving `out` as it was on
/// failure.
pub fn encode_into(value: &Value, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let start = out.len();
    write_value(out, value, 0).inspect_err(|_| out.truncate(start))
}

/// The header of a list whose length is filled in later by [`finish_list`]: a list of items
/// appended one by one (for instance, a batch of stream items).
pub const OPEN_LIST: [u8; 5] = [0xdd, 0, 0, 0, 0];

/// Writes the item count `len` into a buffer that starts with [`OPEN_LIST`].
pub fn finish_list(buf: &mut [u8], len: u32) {
    buf[1..5].copy_from_slice(&len.to_be_bytes());
}

fn write_len(out: &mut Vec<u8>, len: usize, fix: Option<(u8, usize)>, markers: [u8; 3]) {
    match fix {
        Some((base, limit)) if len < limit => out.push(base | len as u8),
        _ if len <= 0xff && markers[0] != 0 => {
            out.push(markers[0]);
            out.push(len as u8);
        }
        _ if len <= 0xffff => {
            out.push(markers[1]);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(markers[2]);
            out.extend_from_slice(&(len as u32).to_be_bytes());
        }
    }
}

fn write_int(out: &mut Vec<u8>, i: i64) {
    if (0..=0x7f).contains(&i) {
        out.push(i as u8);
    } else if (-32..0).contains(&i) {
        out.push(i as i8 as u8);
    } else if let Ok(v) = i8::try_from(i) {
        out.extend_from_slice(&[0xd0, v as u8]);
    } else if let Ok(v) = i16::try_from(i) {
        out.push(0xd1);
        out.extend_from_slice(&v.to_be_bytes());
    } else if let Ok(v) = i32::try_from(i) {
        out.push(0xd2);
        out.extend_from_slice(&v.to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&i.to_be_bytes());
    }
}

fn write_value(out: &mut Vec<u8>, value: &Value, depth: usize) -> Result<(), CodecError> {
    if depth >= MAX_DEPTH {
        return Err(CodecError::Invalid(format!(
            "value nested deeper than {MAX_DEPTH} levels"
        )));
    }
    match value {
        Value::None => out.push(0xc0),
        Value::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Int(i) => write_int(out, *i),
        Value::Float(x) => {
            out.push(0xcb);
            out.extend_from_slice(&x.to_be_bytes());
        }
        Value::Str(s) => {
            write_len(out, s.len(), Some((0xa0, 32)), [0xd9, 0xda, 0xdb]);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Bytes(b) => {
            write_len(out, b.len(), None, [0xc4, 0xc5, 0xc6]);
            out.extend_from_slice(b);
        }
        Value::List(items) => {
            write_len(out, items.len(), Some((0x90, 16)), [0, 0xdc, 0xdd]);
            for item in items {
                write_value(out, item, depth + 1)?;
            }
        }
        Value::Dict(entries) => {
            write_len(out, entries.len(), Some((0x80, 16)), [0, 0xde, 0xdf]);
            for (key, item) in entries {
                write_len(out, key.len(), Some((0xa0, 32)), [0xd9, 0xda, 0xdb]);
                out.extend_from_slice(key.as_bytes());
                write_value(out, item, depth + 1)?;
            }
        }
        Value::Object(_) => {
            return Err(CodecError::Type(
                "a Rust object can only be returned at the top level, not inside a container"
                    .into(),
            ))
        }
    }
    Ok(())
}

/// Decodes one MessagePack buffer holding exactly one value.
pub fn decode(buf: &[u8]) -> Result<Value, CodecError> {
    let mut reader = Reader { buf, pos: 0 };
    let value = reader.value(0)?;
    if reader.pos != buf.len() {
        return Err(CodecError::Invalid(format!(
            "{} trailing bytes after the encoded value",
            buf.len() - reader.pos
        )));
    }
    Ok(value)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.buf.len())
            .ok_or_else(|| CodecError::Invalid("encoded value is truncated".into()))?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn len(&mut self, width: usize) -> Result<usize, CodecError> {
        Ok(match width {
            1 => self.array::<1>()?[0] as usize,
            2 => u16::from_be_bytes(self.array()?) as usize,
            _ => u32::from_be_bytes(self.array()?) as usize,
        })
    }

    /// A declared element count, checked against the bytes left (each element takes >= 1 byte)
    /// so a forged length cannot make us allocate gigabytes.
    fn count(&mut self, n: usize) -> Result<usize, CodecError> {
        if n > self.buf.len() - self.pos {
            return Err(CodecError::Invalid("encoded value is truncated".into()));
        }
        Ok(n)
    }

    fn str(&mut self, n: usize) -> Result<String, CodecError> {
        let bytes = self.take(n)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|e| CodecError::Invalid(format!("str is not valid UTF-8: {e}")))
    }

    fn value(&mut self, depth: usize) -> Result<Value, CodecError> {
        if depth >= MAX_DEPTH {
            return Err(CodecError::Invalid(format!(
                "value nested deeper than {MAX_DEPTH} levels"
            )));
        }
        let marker = self.array::<1>()?[0];
        Ok(match marker {
            0x00..=0x7f => Value::Int(i64::from(marker)),
            0xe0..=0xff => Value::Int(i64::from(marker as i8)),
            0xc0 => Value::None,
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xcc => Value::Int(i64::from(self.array::<1>()?[0])),
            0xcd => Value::Int(i64::from(u16::from_be_bytes(self.array()?))),
            0xce => Value::Int(i64::from(u32::from_be_bytes(self.array()?))),
            0xcf => {
                let v = u64::from_be_bytes(self.array()?);
                Value::Int(i64::try_from(v).map_err(|_| {
                    CodecError::Overflow(format!("int {v} does not fit in 64-bit signed"))
                })?)
            }
            0xd0 => Value::Int(i64::from(self.array::<1>()?[0] as i8)),
            0xd1 => Value::Int(i64::from(i16::from_be_bytes(self.array()?))),
            0xd2 => Value::Int(i64::from(i32::from_be_bytes(self.array()?))),
            0xd3 => Value::Int(i64::from_be_bytes(self.array()?)),
            0xca => Value::Float(f64::from(f32::from_be_bytes(self.array()?))),
            0xcb => Value::Float(f64::from_be_bytes(self.array()?)),
            0xa0..=0xbf => Value::Str(self.str((marker & 0x1f) as usize)?),
            0xd9..=0xdb => {
                let n = self.len(1 << (marker - 0xd9))?;
                Value::Str(self.str(n)?)
            }
            0xc4..=0xc6 => {
                let n = self.len(1 << (marker - 0xc4))?;
                Value::Bytes(self.take(n)?.to_vec())
            }
            0x90..=0x9f => self.list((marker & 0x0f) as usize, depth)?,
            0xdc | 0xdd => {
                let n = self.len(2 << (marker - 0xdc))?;
                self.list(n, depth)?
            }
            0x80..=0x8f => self.dict((marker & 0x0f) as usize, depth)?,
            0xde | 0xdf => {
                let n = self.len(2 << (marker - 0xde))?;
                self.dict(n, depth)?
            }
            0xc7..=0xc9 | 0xd4..=0xd8 => {
                return Err(CodecError::Type(
                    "MessagePack extension types are not supported".into(),
                ))
            }
            0xc1 => {
                return Err(CodecError::Invalid(
                    "invalid MessagePack marker 0xc1".into(),
                ))
            }
        })
    }

    fn list(&mut self, n: usize, depth: usize) -> Result<Value, CodecError> {
        let n = self.count(n)?;
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.value(depth + 1)?);
        }
        Ok(Value::List(items))
    }

    fn dict(&mut self, n: usize, depth: usize) -> Result<Value, CodecError> {
        let n = self.count(n)?;
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            let key = match self.value(depth + 1)? {
                Value::Str(key) => key,
                other => {
                    return Err(CodecError::Type(format!(
                        "dict keys must be str, got {}",
                        type_name(&other)
                    )))
                }
            };
            entries.push((key, self.value(depth + 1)?));
        }
        Ok(Value::Dict(entries))
    }
}

/// The Python type name of a value, for error messages.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::None => "NoneType",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Float(_) => "float",
        Value::Bytes(_) => "bytes",
        Value::Str(_) => "str",
        Value::List(_) => "list",
        Value::Dict(_) => "dict",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(v: Value) {
        let bytes = encode(&v).unwrap();
        assert_eq!(decode(&bytes).unwrap(), v, "round trip of {v:?}");
    }

    #[test]
    fn scalars_round_trip_at_every_width() {
        for i in [
            0,
            1,
            127,
            128,
            255,
            256,
            65535,
            65536,
            -1,
            -32,
            -33,
            -128,
            -129,
            -32768,
            -32769,
            i64::from(i32::MIN),
            i64::from(i32::MIN) - 1,
            i64::MAX,
            i64::MIN,
        ] {
            round_trip(Value::Int(i));
        }
        for x in [0.0, -0.0, 1.5, f64::INFINITY, f64::MIN_POSITIVE, f64::NAN] {
            round_trip(Value::Float(x));
        }
        round_trip(Value::None);
        round_trip(Value::Bool(true));
        round_trip(Value::Bool(false));
    }

    #[test]
    fn containers_round_trip_at_every_width() {
        for n in [0usize, 1, 15, 16, 31, 32, 255, 256, 65535, 65536] {
            round_trip(Value::Str("é".repeat(n / 2) + &"x".repeat(n % 2)));
            round_trip(Value::Bytes(vec![7u8; n]));
            round_trip(Value::List((0..n as i64).map(Value::Int).collect()));
            round_trip(Value::Dict(
                (0..n).map(|i| (i.to_string(), Value::None)).collect(),
            ));
        }
        round_trip(Value::Dict(vec![(
            "a".into(),
            Value::List(vec![
                Value::Int(1),
                Value::Float(2.5),
                Value::Bytes(b"x".to_vec()),
                Value::None,
                Value::Bool(true),
                Value::Str("é".into()),
            ]),
        )]));
    }

    #[test]
    fn out_of_range_ints_are_overflow_errors() {
        let mut buf = vec![0xcf];
        buf.extend_from_slice(&(1u64 << 63).to_be_bytes());
        assert!(matches!(decode(&buf), Err(CodecError::Overflow(_))));
    }

    #[test]
    fn bad_input_is_rejected_with_a_reason() {
        assert!(matches!(decode(&[]), Err(CodecError::Invalid(_))));
        assert!(matches!(decode(&[0xc0, 0xc0]), Err(CodecError::Invalid(_))));
        assert!(matches!(decode(&[0xa2, b'a']), Err(CodecError::Invalid(_))));
        assert!(matches!(decode(&[0xa1, 0xff]), Err(CodecError::Invalid(_))));
        assert!(
            matches!(decode(&[0x81, 0x01, 0xc0]), Err(CodecError::Type(m)) if m.contains("int"))
        );
        assert!(matches!(
            decode(&[0xd4, 0x01, 0x00]),
            Err(CodecError::Type(_))
        ));
        // A forged element count larger than the buffer is refused before allocating.
        assert!(matches!(
            decode(&[0xdd, 0xff, 0xff, 0xff, 0xff]),
            Err(CodecError::Invalid(_))
        ));
        let deep = vec![0x91u8; MAX_DEPTH + 1];
        assert!(matches!(decode(&deep), Err(CodecError::Invalid(m)) if m.contains("deeper")));
    }

    #[test]
    fn objects_only_travel_at_the_top_level() {
        let obj: crate::value::Object = std::sync::Arc::new(1u8);
        assert!(matches!(
            encode(&Value::List(vec![Value::Object(obj)])),
            Err(CodecError::Type(_))
        ));
    }
}
