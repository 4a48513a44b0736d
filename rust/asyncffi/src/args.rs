//! Reading call arguments that arrive through the C ABI.
//!
//! A scalar argument travels as a plain C scalar. A value of any type travels as five C
//! arguments `(tag, int_value, float_value, data, len)` with the meanings of `AffiTag`: Python
//! fills them without allocating, and Rust copies what it needs before the call returns.

use crate::boundary::{AffiStatus, Failure};
use crate::codec::{self, CodecError};
use crate::port::AffiTag;
use crate::value::Value;

/// The bytes at `data`/`len`; a NULL `data` with a non-zero `len` is refused.
///
/// # Safety
/// `data` must be valid for reads of `len` bytes for the duration of the call, or be NULL, or
/// `len` must be 0.
pub unsafe fn bytes<'a>(data: *const u8, len: usize) -> Result<&'a [u8], Failure> {
    if len == 0 {
        return Ok(&[]);
    }
    if data.is_null() {
        return Err(Failure::new(
            AffiStatus::ErrValue,
            format!("NULL data pointer with length {len}"),
        ));
    }
    // SAFETY: non-NULL, and the caller guarantees it is readable for `len` bytes.
    Ok(unsafe { std::slice::from_raw_parts(data, len) })
}

/// The UTF-8 text at `data`/`len`, copied.
///
/// # Safety
/// As for [`bytes`].
pub unsafe fn string(data: *const u8, len: usize) -> Result<String, Failure> {
    // SAFETY: forwarded contract.
    let raw = unsafe { bytes(data, len) }?;
    std::str::from_utf8(raw).map(str::to_owned).map_err(|e| {
        Failure::new(
            AffiStatus::ErrValue,
            format!("text argument is not valid UTF-8: {e}"),
        )
    })
}

/// A value argument, decoded and copied.
///
/// # Safety
/// As for [`bytes`], for the tags that use `data`.
pub unsafe fn value(
    tag: u32,
    int_value: i64,
    float_value: f64,
    data: *const u8,
    len: usize,
) -> Result<Value, Failure> {
    Ok(match tag {
        t if t == AffiTag::None as u32 => Value::None,
        t if t == AffiTag::Bool as u32 => Value::Bool(int_value != 0),
        t if t == AffiTag::Int as u32 => Value::Int(int_value),
        t if t == AffiTag::Float as u32 => Value::Float(float_value),
        // SAFETY (three arms): forwarded contract.
        t if t == AffiTag::Bytes as u32 => Value::Bytes(unsafe { bytes(data, len) }?.to_vec()),
        t if t == AffiTag::Str as u32 => Value::Str(unsafe { string(data, len) }?),
        t if t == AffiTag::Packed as u32 => {
            codec::decode(unsafe { bytes(data, len) }?).map_err(codec_failure)?
        }
        _ => {
            return Err(Failure::new(
                AffiStatus::ErrType,
                format!("value tag {tag} cannot be passed as an argument"),
            ))
        }
    })
}

/// A packed list of values at `data`/`len` (call arguments, a batch of stream items), decoded
/// and copied; each item may be nested as deep as a value passed alone (see
/// [`codec::decode_items`]).
///
/// # Safety
/// As for [`bytes`].
pub unsafe fn items(data: *const u8, len: usize) -> Result<Vec<Value>, Failure> {
    // SAFETY: forwarded contract.
    codec::decode_items(unsafe { bytes(data, len) }?).map_err(codec_failure)
}

pub(crate) fn codec_failure(e: CodecError) -> Failure {
    match e {
        CodecError::Overflow(m) => Failure::new(AffiStatus::ErrOverflow, m),
        CodecError::Type(m) => Failure::new(AffiStatus::ErrType, m),
        CodecError::Invalid(m) => Failure::new(AffiStatus::ErrValue, m),
    }
}
