"""Values round-trip exactly through Rust, and bad input is refused with a clear exception
before anything crosses."""

from __future__ import annotations

import enum
import math
from typing import Any

import asyncffi
import pytest
from asyncffi import demo
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


@pytest.mark.parametrize("bad", [2**63, -(2**63) - 1, 2**64, 10**30])
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


def deep_list(depth: int) -> Any:
    value: Any = None
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: demo.add("1", 2), TypeError, "a must be an int, not str"),
        (lambda: demo.add(1, 2.0), TypeError, "b must be an int, not float"),
        (lambda: demo.sleep("1"), TypeError, "seconds must be a number"),
        (lambda: demo.sleep(1, runtime="trio"), ValueError, "runtime must be"),
        (lambda: demo.fail(b"bytes"), TypeError, "message must be a str"),
        (lambda: demo.cpu(-1), ValueError, "n must be >= 0"),
        (lambda: demo.cpu(2**64), OverflowError, "unsigned 64-bit"),
        (lambda: demo.tick(0.1, 2**32), OverflowError, "32 bits"),
    ],
)
def test_bad_arguments_raise_when_called(call: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("seconds", [-1.0, math.nan, math.inf])
async def test_bad_durations_are_refused_by_rust_with_a_clear_message(seconds: float) -> None:
    with pytest.raises(ValueError, match="seconds must be a finite number >= 0"):
        await demo.sleep(seconds)


async def test_a_null_pointer_with_a_length_is_refused_not_dereferenced() -> None:
    # The raw C ABI, as a careless caller would use it: an error code, never a crash.
    from asyncffi._errors import last_error
    from asyncffi._loader import ffi, lib
    from asyncffi._port import current_port

    port = current_port()
    status = lib.affi_demo_echo(port.id, 999, lib.AFFI_TAG_BYTES, 0, 0.0, ffi.NULL, 10, 0)
    assert status == lib.AFFI_STATUS_ERR_VALUE
    assert "NULL data pointer" in last_error()
