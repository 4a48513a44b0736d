//! The container encoding: a strict subset of MessagePack, one buffer per value.
//!
//! Python packs arguments with the `msgpack` package (`use_bin_type=True`) and unpacks results
//! with it; this module is the Rust half. Only what `Value` can hold is accepted: nil, bool,
//! int (anything outside `i64` is an overflow error), float32/64, str (UTF-8 checked), bin,
//! array and map with str keys. Extension types and non-str keys are rejected with a message
//! naming the problem. Nesting is limited to `MAX_DEPTH` levels of containers both ways so
//! hostile input cannot overflow the stack, declared lengths are checked against the bytes
//! present before anything is allocated, and a str, bytes, list or dict too long for the
//! format's 32-bit lengths is an error, never a truncated length.

use crate::value::Value;

/// Deepest nesting accepted, in levels of containers: `[1]` and `[]` are one level, a scalar
/// none; a list of `MAX_DEPTH` nested lists is accepted, one more level is refused. Far beyond
/// real data, and shallow enough that the recursive encoder and decoder stay well inside a
/// 2 MiB thread stack even in debug builds.
pub const MAX_DEPTH: usize = 128;

/// The longest str, bytes, list or dict the format can describe: its lengths are 32-bit.
pub const MAX_LEN: usize = u32::MAX as usize;

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

/// Encodes `items` as one list whose items may each be nested `MAX_DEPTH` levels deep (the
/// list itself, a carrier such as a call's argument list, is not counted).
pub fn encode_items(items: &[Value]) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(64);
    write_len(
        &mut out,
        items.len(),
        Some((0x90, 16)),
        [0, 0xdc, 0xdd],
        "list",
    )?;
    for item in items {
        write_value(&mut out, item, 0)?;
    }
    Ok(out)
}

/// The header of a list whose length is filled in later by [`finish_list`]: a list of items
/// appended one by one (for instance, a batch of stream items).
pub const OPEN_LIST: [u8; 5] = [0xdd, 0, 0, 0, 0];

/// Writes the item count `len` into a buffer that starts with [`OPEN_LIST`].
pub fn finish_list(buf: &mut [u8], len: u32) {
    buf[1..5].copy_from_slice(&len.to_be_bytes());
}

/// Writes a length header: the fix form when `len` fits it, else the narrowest of the 8-, 16-
/// and 32-bit forms (a zero `markers[0]` means the kind has no 8-bit form). A length above
/// [`MAX_LEN`] is an error naming `what`, and nothing is written.
fn write_len(
    out: &mut Vec<u8>,
    len: usize,
    fix: Option<(u8, usize)>,
    markers: [u8; 3],
    what: &str,
) -> Result<(), CodecError> {
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
            let len32 = u32::try_from(len).map_err(|_| too_large(what, len))?;
            out.push(markers[2]);
            out.extend_from_slice(&len32.to_be_bytes());
        }
    }
    Ok(())
}

fn too_large(what: &str, len: usize) -> CodecError {
    let unit = match what {
        "str" | "bytes" | "dict key" => "bytes",
        "dict" => "entries",
        _ => "items",
    };
    CodecError::Invalid(format!(
        "{what} of {len} {unit} is too large to encode (at most {MAX_LEN})"
    ))
}

fn too_deep() -> CodecError {
    CodecError::Invalid(format!(
        "value nested deeper than {MAX_DEPTH} levels of lists and dicts"
    ))
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

/// Writes `value`, which `depth` containers enclose.
fn write_value(out: &mut Vec<u8>, value: &Value, depth: usize) -> Result<(), CodecError> {
    if matches!(value, Value::List(_) | Value::Dict(_)) && depth >= MAX_DEPTH {
        return Err(too_deep());
    }
    match value {
        Value::None => out.push(0xc0),
        Value::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Int(i) => write_int(out, *i),
        Value::UInt(u) => {
            out.push(0xcf);
            out.extend_from_slice(&u.to_be_bytes());
        }
        Value::Float(x) => {
            out.push(0xcb);
            out.extend_from_slice(&x.to_be_bytes());
        }
        Value::Str(s) => {
            write_len(out, s.len(), Some((0xa0, 32)), [0xd9, 0xda, 0xdb], "str")?;
            out.extend_from_slice(s.as_bytes());
        }
        Value::Bytes(b) => {
            write_len(out, b.len(), None, [0xc4, 0xc5, 0xc6], "bytes")?;
            out.extend_from_slice(b);
        }
        Value::List(items) => {
            write_len(out, items.len(), Some((0x90, 16)), [0, 0xdc, 0xdd], "list")?;
            for item in items {
                write_value(out, item, depth + 1)?;
            }
        }
        Value::Dict(entries) => {
            write_len(
                out,
                entries.len(),
                Some((0x80, 16)),
                [0, 0xde, 0xdf],
                "dict",
            )?;
            for (key, item) in entries {
                write_len(
                    out,
                    key.len(),
                    Some((0xa0, 32)),
                    [0xd9, 0xda, 0xdb],
                    "dict key",
                )?;
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
    reader.end()?;
    Ok(value)
}

/// Decodes one MessagePack buffer holding exactly one list, whose items may each be nested
/// `MAX_DEPTH` levels deep (the list itself, a carrier such as a batch of stream items, is not
/// counted). Anything but a list is a `CodecError::Type`.
pub fn decode_items(buf: &[u8]) -> Result<Vec<Value>, CodecError> {
    let mut reader = Reader { buf, pos: 0 };
    let marker = reader.array::<1>()?[0];
    let n = match marker {
        0x90..=0x9f => (marker & 0x0f) as usize,
        0xdc | 0xdd => reader.len(2 << (marker - 0xdc))?,
        _ => return Err(CodecError::Type("expected a packed list".into())),
    };
    let items = reader.items(n, 0)?;
    reader.end()?;
    Ok(items)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn end(&self) -> Result<(), CodecError> {
        if self.pos != self.buf.len() {
            return Err(CodecError::Invalid(format!(
                "{} trailing bytes after the encoded value",
                self.buf.len() - self.pos
            )));
        }
        Ok(())
    }

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

    /// Reads one value, which `depth` containers enclose.
    fn value(&mut self, depth: usize) -> Result<Value, CodecError> {
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
                i64::try_from(v).map_or(Value::UInt(v), Value::Int)
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

    /// `n` values, each enclosed by `depth` containers.
    fn items(&mut self, n: usize, depth: usize) -> Result<Vec<Value>, CodecError> {
        let n = self.count(n)?;
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.value(depth)?);
        }
        Ok(items)
    }

    /// A list of `n` items, which `depth` containers enclose.
    fn list(&mut self, n: usize, depth: usize) -> Result<Value, CodecError> {
        if depth >= MAX_DEPTH {
            return Err(too_deep());
        }
        Ok(Value::List(self.items(n, depth + 1)?))
    }

    /// A dict of `n` entries, which `depth` containers enclose.
    fn dict(&mut self, n: usize, depth: usize) -> Result<Value, CodecError> {
        if depth >= MAX_DEPTH {
            return Err(too_deep());
        }
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
        Value::Int(_) | Value::UInt(_) => "int",
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
    fn uint64_above_i64_is_a_uint_and_round_trips() {
        let mut buf = vec![0xcf];
        buf.extend_from_slice(&(1u64 << 63).to_be_bytes());
        assert_eq!(decode(&buf).unwrap(), Value::UInt(1 << 63));
        round_trip(Value::UInt(u64::MAX));
        round_trip(Value::List(vec![
            Value::UInt(u64::MAX),
            Value::Int(i64::MIN),
        ]));
        // A uint64 that fits in i64 is an Int: one form per int.
        let mut small = vec![0xcf];
        small.extend_from_slice(&7u64.to_be_bytes());
        assert_eq!(decode(&small).unwrap(), Value::Int(7));
        assert_eq!(
            decode(&encode(&Value::UInt(7)).unwrap()).unwrap(),
            Value::UInt(7)
        );
        assert_ne!(Value::Int(-1), Value::UInt(u64::MAX));
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
    }

    /// `levels` lists nested in one another, the innermost holding `inner`.
    fn nested(levels: usize, inner: Value) -> Value {
        (0..levels).fold(inner, |v, _| Value::List(vec![v]))
    }

    #[test]
    fn nesting_is_accepted_up_to_max_depth_levels_and_refused_beyond() {
        for inner in [Value::Int(1), Value::List(vec![]), Value::Dict(vec![])] {
            // `inner` itself is a level when it is a container.
            let extra = usize::from(!matches!(inner, Value::Int(_)));
            let deepest = nested(MAX_DEPTH - extra, inner.clone());
            round_trip(deepest.clone());
            let too_deep = nested(MAX_DEPTH + 1 - extra, inner.clone());
            let refused = |r: Result<_, CodecError>| matches!(r, Err(CodecError::Invalid(m)) if m.contains("deeper than 128 levels"));
            assert!(refused(encode(&too_deep).map(|_| ())));
            // The same bytes built by hand (the encoder refuses to make them).
            let mut bytes = vec![0x91u8; MAX_DEPTH + 1 - extra];
            bytes.extend(encode(&inner).unwrap());
            assert!(refused(decode(&bytes).map(|_| ())));
            bytes.truncate(0);
            bytes.extend(vec![0x91u8; MAX_DEPTH - extra]);
            bytes.extend(encode(&inner).unwrap());
            assert_eq!(decode(&bytes).unwrap(), deepest);
        }
        // Dicts count as levels as lists do.
        let dicts = (0..MAX_DEPTH).fold(Value::None, |v, _| Value::Dict(vec![("k".into(), v)]));
        round_trip(dicts.clone());
        assert!(encode(&Value::List(vec![dicts])).is_err());
    }

    #[test]
    fn items_of_a_carrier_list_may_each_be_max_depth_levels_deep() {
        let items = vec![nested(MAX_DEPTH, Value::None), Value::Int(2)];
        let bytes = encode_items(&items).unwrap();
        let shallow = vec![Value::Int(1), Value::Str("a".into())];
        assert_eq!(
            encode_items(&shallow).unwrap(),
            encode(&Value::List(shallow.clone())).unwrap()
        );
        assert_eq!(decode_items(&bytes).unwrap(), items);
        assert!(
            decode(&bytes).is_err(),
            "as one value the list is a level too many"
        );
        assert!(encode_items(&[nested(MAX_DEPTH + 1, Value::None)]).is_err());
        let mut too_deep = vec![0x91u8; MAX_DEPTH + 2];
        too_deep.push(0xc0);
        assert!(decode_items(&too_deep).is_err());
        assert!(matches!(decode_items(&[0xc0]), Err(CodecError::Type(_))));
        assert!(matches!(
            decode_items(&[0x90, 0xc0]),
            Err(CodecError::Invalid(_))
        ));
        assert_eq!(decode_items(&[0x90]).unwrap(), vec![]);
    }

    #[test]
    fn lengths_beyond_32_bits_are_errors_not_truncated() {
        let str_markers = [0xd9, 0xda, 0xdb];
        let mut out = Vec::new();
        write_len(&mut out, MAX_LEN, Some((0xa0, 32)), str_markers, "str").unwrap();
        assert_eq!(out, [0xdb, 0xff, 0xff, 0xff, 0xff]);
        for (len, what) in [
            (MAX_LEN + 1, "str"),
            (1 << 33, "bytes"),
            (usize::MAX, "list"),
        ] {
            let mut out = vec![7u8];
            let err = write_len(&mut out, len, None, str_markers, what).unwrap_err();
            assert_eq!(
                out,
                [7u8],
                "nothing is written for a length that does not fit"
            );
            assert!(
                matches!(&err, CodecError::Invalid(m) if m.contains(&format!("{what} of {len}"))
                    && m.contains("too large")),
                "{err:?}"
            );
        }
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
