"""Values round-trip exactly through Rust, and bad input is refused with a clear exception
before anything crosses."""

from __future__ import annotations

import array
import enum
import math
from typing import Any

import asyncffi
import pytest
from asyncffi import demo
from asyncffi._runtime import runtime_id, runtime_names
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

I64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
SCALARS = st.none() | st.booleans() | I64 | st.floats(allow_nan=False) | st.binary() | st.text()
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)

EXAMPLES = [
    None,
    True,
    False,
    0,
    1,
    -1,
    2**63 - 1,
    -(2**63),
    0.0,
    -0.0,
    1.5,
    math.inf,
    -math.inf,
    b"",
    b"\x00\xff",
    "",
    "é",
    "x" * 100_000,
    b"y" * 100_000,
    [],
    {},
    [1, [2, [3, []]]],
    {"a": [1, 2.5, b"x", None, True, "é"]},
    {"": {"nested": {"deeper": [None]}}},
    list(range(70_000)),
    {str(i): i for i in range(70_000)},
]


@pytest.mark.parametrize("value", EXAMPLES, ids=lambda v: type(v).__name__)
async def test_values_round_trip_exactly(value: Any, runtime: str) -> None:
    result = await demo.echo(value, runtime=runtime)
    assert result == value
    assert type(result) is type(value)
    if isinstance(value, float):
        assert math.copysign(1, result) == math.copysign(1, value)


async def test_nan_round_trips() -> None:
    assert math.isnan(await demo.echo(math.nan))
    assert math.isnan((await demo.echo([math.nan]))[0])


async def test_dict_order_and_types_inside_containers_are_kept() -> None:
    value = {"z": 1, "a": True, "m": 1.0, "b": b"1", "s": "1"}
    result = await demo.echo(value)
    assert list(result) == list(value)
    assert [type(v) for v in result.values()] == [int, bool, float, bytes, str]


async def test_subclasses_and_tuples_cross_as_their_base_types() -> None:
    class Color(enum.IntEnum):
        RED = 1

    assert await demo.echo(Color.RED) == 1
    assert await demo.echo((1, (2, 3))) == [1, [2, 3]]
    assert await demo.echo(bytearray(b"ab")) == b"ab"
    assert await demo.echo(memoryview(b"cd")) == b"cd"


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=VALUES)
def test_any_value_round_trips(value: Any) -> None:
    import asyncio

    assert asyncio.run(demo.echo(value)) == value


@pytest.mark.parametrize("big", [2**63, 2**63 + 1, 2**64 - 1])
async def test_unsigned_64_bit_ints_round_trip_in_values(big: int) -> None:
    # Above i64::MAX: msgpack's uint64, Rust's Value::UInt, at the top level and inside.
    assert await demo.echo(big) == big
    assert await demo.echo([1, {"k": big}, -(2**63)]) == [1, {"k": big}, -(2**63)]
    with pytest.raises(OverflowError, match="64"):
        demo.add(big, 1)  # an i64 parameter still refuses it


@pytest.mark.parametrize("bad", [-(2**63) - 1, 2**64, 10**30])
async def test_out_of_range_ints_raise_overflow_before_crossing(bad: int) -> None:
    spawned = asyncffi.stats()["spawned"]
    with pytest.raises(OverflowError, match="64"):
        await demo.echo(bad)
    with pytest.raises(OverflowError, match="64"):
        await demo.echo([1, {"k": bad}])
    with pytest.raises(OverflowError, match="64"):
        demo.add(bad, 1)
    assert asyncffi.stats()["spawned"] == spawned, "a Rust task was started for bad input"


@pytest.mark.parametrize(
    "bad, error, match",
    [
        ({1, 2}, TypeError, "cannot pass 'set' objects"),
        (object(), TypeError, "cannot pass 'object' objects"),
        ([1, {2, 3}], TypeError, "cannot pass 'set' objects"),
        ({1: "int key"}, TypeError, "dict keys must be str, got int"),
        ({b"k": 1}, TypeError, "dict keys must be str, got bytes"),
        ("\udc80", UnicodeEncodeError, "surrogate"),
    ],
)
async def test_unsupported_values_raise_clear_errors(bad: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        await demo.echo(bad)


@pytest.mark.parametrize("depth", [200, 600])
async def test_too_deep_nesting_is_refused(depth: int) -> None:
    deep: Any = None
    for _ in range(depth):
        deep = [deep]
    with pytest.raises(ValueError, match=r"deep|recursion"):
        await demo.echo(deep)
    assert await demo.echo(deep_list(100)) == deep_list(100)


def deep_list(depth: int, inner: Any = None) -> Any:
    """``depth`` lists nested in one another around ``inner``."""
    value: Any = inner
    for _ in range(depth):
        value = [value]
    return value


def deep_dict(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"k": value}
    return value


# The README's limit: 128 levels of lists and dicts, counting the innermost container.
AT_LIMIT = [deep_list(128), deep_list(127, []), deep_dict(128), deep_list(127, {"k": b"x"})]
BEYOND_LIMIT = [deep_list(129), deep_list(128, []), deep_dict(129), deep_list(128, {})]


@pytest.mark.parametrize("value", AT_LIMIT, ids=["list", "empty_list", "dict", "mixed"])
async def test_nesting_of_128_levels_crosses_both_ways(value: Any, runtime: str) -> None:
    # Python -> Rust (the argument) and Rust -> Python (the result).
    assert await demo.echo(value, runtime=runtime) == value
    # As an argument of a Rust call into Python, and as that call's result.
    assert await demo.call_python(lambda v: v, value, runtime=runtime) == value
    # As items of a Python iterator Rust reads, and of the Rust stream Python reads back.
    assert [item async for item in demo.echo_stream([value, value], runtime=runtime)] == [
        value,
        value,
    ]


@pytest.mark.parametrize("value", BEYOND_LIMIT, ids=["list", "empty_list", "dict", "mixed"])
async def test_nesting_of_129_levels_is_refused_with_a_clear_error(value: Any) -> None:
    match = "nested deeper than 128 levels"
    with pytest.raises(ValueError, match=match):
        await demo.echo(value)
    with pytest.raises(ValueError, match=match):
        await demo.call_python(lambda v: v, value)
    # A Python callable's result too deep for Rust fails the call that awaited it.
    with pytest.raises(Exception, match=match):
        await demo.call_python(lambda: value)
    with pytest.raises(ValueError, match=match):
        await demo.take([1, value], 2)


NON_CONTIGUOUS = memoryview(b"abcdef")[::2]


@pytest.mark.parametrize(
    "value, expected",
    [
        (NON_CONTIGUOUS, b"ace"),
        ([NON_CONTIGUOUS], [b"ace"]),
        ({"a": [1, (NON_CONTIGUOUS, memoryview(b"xyz")[::-1])]}, {"a": [1, [b"ace", b"zyx"]]}),
        (deep_list(127, NON_CONTIGUOUS), deep_list(127, b"ace")),
        ([memoryview(array.array("h", [1, 2, 3]))[::2]], [array.array("h", [1, 3]).tobytes()]),
    ],
    ids=["top_level", "in_list", "in_dict_and_tuple", "deep", "of_int16"],
)
async def test_non_contiguous_memoryviews_are_copied_at_any_depth(
    value: Any, expected: Any, runtime: str
) -> None:
    assert await demo.echo(value, runtime=runtime) == expected
    assert await demo.call_python(lambda: value, runtime=runtime) == expected
    assert await demo.take([value], 1, runtime=runtime) == [expected]


async def test_released_or_too_deep_memoryviews_are_refused_clearly() -> None:
    view = memoryview(b"abcdef")
    released = view[::2]
    view.release()
    released.release()
    with pytest.raises(ValueError, match="released memoryview"):
        await demo.echo([released, NON_CONTIGUOUS])
    with pytest.raises(ValueError, match="nested deeper than 128 levels"):
        await demo.echo(deep_list(129, NON_CONTIGUOUS))


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: demo.add("1", 2), TypeError, "argument 'a' must be int \\(i64\\), not str"),
        (lambda: demo.add(1, 2.0), TypeError, "argument 'b' must be int \\(i64\\), not float"),
        (lambda: demo.sleep("1"), TypeError, "argument 'seconds' must be float \\(seconds\\)"),
        (lambda: demo.sleep(1, runtime="trio"), ValueError, "runtime must be"),
        (lambda: demo.fail(b"bytes"), TypeError, "argument 'message' must be str"),
        (lambda: demo.cpu(-1), ValueError, "argument 'n' must be >= 0"),
        (lambda: demo.cpu(2**64), OverflowError, "out of range for u64"),
        (lambda: demo.tick(0.1, 2**32), OverflowError, "out of range for u32"),
    ],
)
def test_bad_arguments_raise_when_called(call: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        call()


def test_the_runtime_names_come_from_the_library() -> None:
    # The library lists its runtimes (aliases too) and the package passes their C values on.
    assert runtime_names() == ["tokio", "async-std", "loop"]
    names = ["tokio", "async-std", "async_std", "loop"]
    assert [runtime_id(name) for name in names] == [0, 1, 1, 2]
    with pytest.raises(
        ValueError, match=r"runtime must be one of 'tokio', 'async-std', 'loop', not 'trio'"
    ):
        runtime_id("trio")
    with pytest.raises(ValueError, match=r"runtime must be one of .*, not \[1\]"):
        runtime_id([1])  # type: ignore[arg-type]


@pytest.mark.parametrize("seconds", [-1.0, math.nan, math.inf])
async def test_bad_durations_are_refused_by_rust_with_a_clear_message(seconds: float) -> None:
    with pytest.raises(ValueError, match="seconds must be a finite number >= 0"):
        await demo.sleep(seconds)


async def test_a_null_pointer_with_a_length_is_refused_not_dereferenced() -> None:
    # The raw C ABI, as a careless caller would use it: an error code, never a crash.
    from asyncffi._errors import last_error
    from asyncffi._loader import ffi, lib

    current_port = asyncffi.demo.library.current_port

    port = current_port()
    echo = asyncffi.demo.library.manifest_functions.asyncffi_native_echo
    status = echo(port.id, 999, lib.AFFI_TAG_BYTES, 0, 0.0, ffi.NULL, 10, 0)
    assert status == lib.AFFI_STATUS_ERR_VALUE
    assert "NULL data pointer" in last_error(lib)
