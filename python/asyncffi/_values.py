"""Python values to C arguments and back.

Scalars travel as plain C scalars; ``bytes`` and ``str`` as a pointer to their UTF-8 bytes;
lists and dicts as one MessagePack buffer (packed here with ``msgpack``, decoded by the Rust
codec). Everything is checked before it crosses: wrong types raise ``TypeError``, ints outside
-2**63..2**64-1 ``OverflowError`` (a Rust ``Value`` holds those above ``i64::MAX`` as
``Value::UInt``), text that is not valid Unicode ``UnicodeEncodeError``.
A ``bytearray`` or ``memoryview`` travels as ``bytes``; a memoryview that is not contiguous
(``memoryview(b"abcdef")[::2]``) is copied into contiguous bytes first, at any depth.
"""

from __future__ import annotations

import operator
from typing import Any, SupportsIndex, Tuple, Union

import msgpack

from ._loader import abi, ffi

I64_MIN = -(1 << 63)
I64_MAX = (1 << 63) - 1
U64_MAX = (1 << 64) - 1

#: Deepest nesting of lists and dicts that crosses either way (the Rust codec's ``MAX_DEPTH``):
#: ``[1]`` and ``[]`` are one level. Deeper values are refused with ``ValueError``.
MAX_DEPTH = 128

TAG_NONE = abi.AFFI_TAG_NONE
TAG_BOOL = abi.AFFI_TAG_BOOL
TAG_INT = abi.AFFI_TAG_INT
TAG_FLOAT = abi.AFFI_TAG_FLOAT
TAG_BYTES = abi.AFFI_TAG_BYTES
TAG_STR = abi.AFFI_TAG_STR
TAG_PACKED = abi.AFFI_TAG_PACKED
TAG_OBJECT = abi.AFFI_TAG_OBJECT

NULL = ffi.NULL

#: ``(tag, int_value, float_value, data, len)``: a value as five C arguments.
ValueArgs = Tuple[int, int, float, Union[bytes, Any], int]

_EXPECTED = "None, bool, int, float, bytes, str, list or dict"


def _int(value: object, name: str) -> int:
    if type(value) is int:
        return value
    if isinstance(value, SupportsIndex) and not isinstance(value, float):
        return operator.index(value)
    raise TypeError(f"{name} must be an int, not {type(value).__name__}")


def i64(value: object, name: str) -> int:
    """``value`` as a signed 64-bit int, or ``TypeError`` / ``OverflowError``."""
    i = _int(value, name)
    if not I64_MIN <= i <= I64_MAX:
        raise OverflowError(f"{name}={i} does not fit in a signed 64-bit int")
    return i


def u64(value: object, name: str) -> int:
    """``value`` as an unsigned 64-bit int."""
    i = _int(value, name)
    if i < 0:
        raise ValueError(f"{name} must be >= 0, got {i}")
    if i > U64_MAX:
        raise OverflowError(f"{name}={i} does not fit in an unsigned 64-bit int")
    return i


def seconds(value: object, name: str = "seconds") -> float:
    """``value`` as a float number of seconds (the Rust side checks the range)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"{name} must be a number, not {type(value).__name__}")


def text(value: object, name: str) -> bytes:
    """``value`` (a str) as UTF-8 bytes."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    return value.encode("utf-8")


def _unsupported(obj: object) -> TypeError:
    return TypeError(f"cannot pass {type(obj).__name__!r} objects to Rust: expected {_EXPECTED}")


def _pack_default(obj: object) -> Any:
    if isinstance(obj, int):  # msgpack hands over ints that do not fit in 64 bits
        raise OverflowError(f"int {obj} does not fit in 64 bits (-2**63..2**64-1)")
    raise _unsupported(obj)


def packb(value: Any) -> bytes:
    """``value`` (a list, tuple or dict) as one MessagePack buffer for Rust.

    :raises TypeError: a value of an unsupported type inside.
    :raises OverflowError: an int outside -2**63..2**64-1 inside (msgpack's int64 and uint64;
        Rust reads ints above ``i64::MAX`` as ``Value::UInt``).
    :raises ValueError: nested too deep, too large for the format, or a released memoryview.
    """
    try:
        return msgpack.packb(value, use_bin_type=True, default=_pack_default, datetime=False)
    except BufferError:
        # msgpack reads a memoryview in place and cannot read one that is not contiguous
        # (``memoryview(b"abcdef")[::2]``): copy such views, as ``bytes(view)`` does at the top
        # level. This path costs a walk of the value, and only values holding one take it.
        copied = _contiguous(value, 0)
        return msgpack.packb(copied, use_bin_type=True, default=_pack_default, datetime=False)


def _contiguous(value: Any, depth: int) -> Any:
    """``value`` with every memoryview inside replaced by its bytes (a copy of the containers
    that hold one). Refuses nesting that Rust would refuse anyway (one extra level allows for a
    carrier list, such as a batch of stream items) so that the walk stays bounded."""
    if isinstance(value, memoryview):
        return value.tobytes()
    if isinstance(value, (list, tuple, dict)) and depth > MAX_DEPTH:
        raise ValueError(f"value nested deeper than {MAX_DEPTH} levels of lists and dicts")
    if isinstance(value, (list, tuple)):
        return [_contiguous(item, depth + 1) for item in value]
    if isinstance(value, dict):
        return {
            _contiguous(key, depth + 1): _contiguous(item, depth + 1) for key, item in value.items()
        }
    return value


def value_args(value: object) -> ValueArgs:
    """``value`` as the five C arguments of an ``AffiTag``-tagged value."""
    t = type(value)
    if t is int:
        if not I64_MIN <= value <= I64_MAX:  # type: ignore[operator]
            if I64_MAX < value <= U64_MAX:  # type: ignore[operator]
                # msgpack's uint64, Rust's ``Value::UInt``: packed, as the scalar is an i64.
                data = msgpack.packb(value)
                return (TAG_PACKED, 0, 0.0, data, len(data))
            raise OverflowError(f"int {value} does not fit in 64 bits (-2**63..2**64-1)")
        return (TAG_INT, value, 0.0, NULL, 0)  # type: ignore[return-value]
    if t is float:
        return (TAG_FLOAT, 0, value, NULL, 0)  # type: ignore[return-value]
    if t is str:
        data = value.encode("utf-8")  # type: ignore[attr-defined]
        return (TAG_STR, 0, 0.0, data, len(data))
    if value is None:
        return (TAG_NONE, 0, 0.0, NULL, 0)
    if t is bool:
        return (TAG_BOOL, int(value), 0.0, NULL, 0)  # type: ignore[call-overload]
    if t is bytes:
        return (TAG_BYTES, 0, 0.0, value, len(value))  # type: ignore[arg-type]
    if t is list or t is dict or t is tuple:
        try:
            data = packb(value)
        except ValueError as e:  # msgpack: too deep or too large
            raise ValueError(f"cannot pass the value to Rust: {e}") from None
        return (TAG_PACKED, 0, 0.0, data, len(data))
    # Subclasses of the supported types (IntEnum, str subclasses, bytearray, ...).
    if isinstance(value, bool):
        return (TAG_BOOL, int(value), 0.0, NULL, 0)
    if isinstance(value, int):
        return value_args(int(value))
    if isinstance(value, float):
        return value_args(float(value))
    if isinstance(value, str):
        return value_args(str(value))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return value_args(bytes(value))
    if isinstance(value, (list, tuple)):
        return value_args(list(value))
    if isinstance(value, dict):
        return value_args(dict(value))
    raise _unsupported(value)


def pack(value: Any) -> bytes:
    """Packs a list of str/int (error fields) for Rust."""
    return msgpack.packb(value, use_bin_type=True)


def unpack(data: Any, size: int) -> Any:
    """Decodes a packed container at ``data``."""
    return msgpack.unpackb(ffi.buffer(data, size), raw=False, strict_map_key=False)


def text_at(data: Any, size: int) -> str:
    """The UTF-8 text at ``data``."""
    return str(ffi.buffer(data, size), "utf-8")


def bytes_at(data: Any, size: int) -> bytes:
    """The bytes at ``data``."""
    return ffi.buffer(data, size)[:]  # type: ignore[no-any-return]
