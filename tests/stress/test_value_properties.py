"""Property tests on every value type: any value made of None, bool, int (-2**63..2**64-1:
msgpack's int64 and uint64), float (NaN, infinities and -0.0 included), bytes, str, and lists
and dicts with str keys nested in any way round-trips EXACTLY (same types, same float bits
up to NaN, same dict order) through ``demo.echo`` on each runtime, as the items of
``demo.echo_stream``, and through Rust calling Python (``demo.call_python`` with an identity
callable). Values that cannot cross (ints outside -2**63..2**64-1, lone surrogates, non-str
dict keys) are refused with a clear exception."""

from __future__ import annotations

import asyncio
from typing import Any, Iterator

import pytest
from asyncffi import demo
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stress_util import scaled
from value_strategies import I64_MAX, I64_MIN, U64_MAX, same, values

pytestmark = pytest.mark.stress

I64 = st.integers(min_value=I64_MIN, max_value=I64_MAX)
VALUES = values(max_leaves=40, max_size=6, text_size=32)
OUT_OF_RANGE = st.integers(max_value=I64_MIN - 1) | st.integers(min_value=U64_MAX + 1)
SURROGATE_TEXT = st.builds(
    lambda a, s, b: a + s + b,
    st.text(max_size=5),
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF).map(str),
    st.text(max_size=5),
)
BAD_KEYS = st.none() | st.booleans() | I64 | st.floats(allow_nan=False) | st.binary(max_size=8)

SETTINGS = settings(
    max_examples=scaled(120),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    lp = asyncio.new_event_loop()
    yield lp
    lp.close()


def identity(x: Any) -> Any:
    return x


@SETTINGS
@given(value=VALUES)
def test_values_round_trip_through_echo(
    loop: asyncio.AbstractEventLoop, runtime: str, value: Any
) -> None:
    got = loop.run_until_complete(demo.echo(value, runtime=runtime))
    assert same(got, value), (value, got)


@SETTINGS
@given(items=st.lists(VALUES, max_size=12))
def test_values_round_trip_as_stream_items(
    loop: asyncio.AbstractEventLoop, runtime: str, items: list
) -> None:
    async def run() -> list:
        return [x async for x in demo.echo_stream(items, runtime=runtime)]

    got = loop.run_until_complete(run())
    assert same(got, items), (items, got)


@SETTINGS
@given(value=VALUES)
def test_values_round_trip_through_rust_calling_python(
    loop: asyncio.AbstractEventLoop, runtime: str, value: Any
) -> None:
    got = loop.run_until_complete(demo.call_python(identity, value, runtime=runtime))
    assert same(got, value), (value, got)


@SETTINGS
@given(bad=OUT_OF_RANGE, wrap=st.sampled_from(["bare", "list", "dict"]))
def test_out_of_range_ints_are_refused(
    loop: asyncio.AbstractEventLoop, bad: int, wrap: str
) -> None:
    value = {"bare": bad, "list": [1, [bad]], "dict": {"k": {"j": bad}}}[wrap]

    async def run() -> None:
        await demo.echo(value)

    with pytest.raises(OverflowError, match="64"):
        loop.run_until_complete(run())


@SETTINGS
@given(bad=SURROGATE_TEXT, wrap=st.sampled_from(["bare", "list", "dict value", "dict key"]))
def test_lone_surrogates_are_refused_clearly(
    loop: asyncio.AbstractEventLoop, bad: str, wrap: str
) -> None:
    value = {"bare": bad, "list": ["ok", bad], "dict value": {"k": bad}, "dict key": {bad: 1}}[wrap]

    async def run() -> None:
        await demo.echo(value)

    with pytest.raises((UnicodeEncodeError, ValueError, TypeError), match="surrogate"):
        loop.run_until_complete(run())


@SETTINGS
@given(key=BAD_KEYS, nested=st.booleans())
def test_non_str_dict_keys_are_refused(
    loop: asyncio.AbstractEventLoop, key: Any, nested: bool
) -> None:
    value: Any = {key: 1}
    if nested:
        value = [{"ok": value}]

    async def run() -> None:
        await demo.echo(value)

    with pytest.raises(TypeError, match="dict keys must be str"):
        loop.run_until_complete(run())


def nested_lists(depth: int) -> Any:
    value: Any = None
    for _ in range(depth):
        value = [value]
    return value


async def test_the_documented_nesting_limit_is_exact(runtime: str) -> None:
    # The README allows nesting up to 128 levels: 128 crosses, 129 is refused clearly.
    deep = nested_lists(128)
    assert await demo.echo(deep, runtime=runtime) == deep
    assert await demo.call_python(identity, deep, runtime=runtime) == deep
    with pytest.raises(ValueError, match=r"deep|nest|128"):
        await demo.echo(nested_lists(129), runtime=runtime)


async def test_a_non_contiguous_memoryview_is_copied_or_refused_clearly() -> None:
    view = memoryview(b"abcdef")[::2]
    assert not view.contiguous
    for value in (view, [view], {"k": view}):
        try:
            got = await demo.echo(value)
        except (TypeError, ValueError) as e:
            assert "contiguous" in str(e) or "memoryview" in str(e), e
        else:
            assert got == {memoryview: b"ace", list: [b"ace"], dict: {"k": b"ace"}}[type(value)]
