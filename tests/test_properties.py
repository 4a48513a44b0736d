"""Property tests of the generated wrappers: hypothesis-made values of every type the macros
carry go through the test library's identity functions (``rust/testlib/src/roundtrip.rs``),
sync and async, and come back exactly (same types, float bits, ints at their bounds); ints out
of a type's range raise ``OverflowError`` naming the parameter, at the top level (checked in
Python) and inside containers (checked in Rust)."""

from __future__ import annotations

import asyncio
import math
from typing import Any, Callable, Dict, Iterator, Tuple

import asyncffi
import pytest
from asyncffi._manifest import read
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from value_strategies import FLOATS, same, values

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)

BOUNDS = {
    "i8": (-(2**7), 2**7 - 1),
    "i16": (-(2**15), 2**15 - 1),
    "i32": (-(2**31), 2**31 - 1),
    "i64": (-(2**63), 2**63 - 1),
    "isize": (-(2**63), 2**63 - 1),
    "u8": (0, 2**8 - 1),
    "u16": (0, 2**16 - 1),
    "u32": (0, 2**32 - 1),
    "u64": (0, 2**64 - 1),
    "usize": (0, 2**64 - 1),
}


def ints(name: str) -> st.SearchStrategy[int]:
    low, high = BOUNDS[name]
    return st.integers(low, high) | st.sampled_from([low, high, 0 if low else 1])


F64 = FLOATS
F32 = st.floats(width=32) | st.sampled_from([-0.0, math.inf, -math.inf, math.nan])
TEXT = st.text(max_size=20)
VALUE = values(max_leaves=20, max_size=4, text_size=20)
POINT = st.fixed_dictionaries(
    {
        "x": ints("i32"),
        "y": F64,
        "label": TEXT,
        "tags": st.lists(TEXT, max_size=3),
        "note": st.none() | TEXT,
    }
)
SHAPE = (
    st.just("Empty")
    | st.builds(lambda r: {"Circle": r}, F64)
    | st.builds(lambda a, b: {"Segment": [a, b]}, ints("i32"), ints("i32"))
    | st.builds(lambda w, h: {"Rect": {"w": w, "h": h}}, ints("u32"), ints("u32"))
)

#: The identity functions by name, with the values they take.
TYPES: Dict[str, st.SearchStrategy[Any]] = {
    **{name: ints(name) for name in BOUNDS},
    "f32": F32,
    "f64": F64,
    "bool": st.booleans(),
    "str": TEXT,
    "bytes": st.binary(max_size=64),
    "opt_i64": st.none() | ints("i64"),
    "opt_str": st.none() | TEXT,
    "vec_u64": st.lists(ints("u64"), max_size=8),
    "vec_i8": st.lists(ints("i8"), max_size=8),
    "vec_str": st.lists(TEXT, max_size=5),
    "vec_opt_f64": st.lists(st.none() | F64, max_size=5),
    "hashmap": st.dictionaries(TEXT, ints("i64"), max_size=5),
    "btreemap": st.dictionaries(TEXT, st.lists(ints("u16"), max_size=3), max_size=5),
    "tuple": st.tuples(ints("i64"), TEXT, st.booleans()),
    "value": VALUE,
    "unit": st.none(),
    "point": POINT,
    "shape": SHAPE,
    "alias": ints("u64"),  # `type NoteId = u64`, exported with `scalar = "id"`
}


def expected(value: Any) -> Any:
    """What comes back for ``value``: tuples cross as lists (msgpack has no tuple)."""
    if isinstance(value, tuple):
        return [expected(v) for v in value]
    return value


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def functions(testlib: asyncffi.Library, name: str) -> Tuple[Callable[..., Any], Any]:
    return getattr(testlib, f"rt_{name}"), getattr(testlib, f"rt_{name}_later")


@pytest.mark.parametrize("name", list(TYPES))
def test_values_round_trip_exactly(
    testlib: asyncffi.Library, loop: asyncio.AbstractEventLoop, name: str
) -> None:
    now, later = functions(testlib, name)

    @SETTINGS
    @given(value=TYPES[name])
    def check(value: Any) -> None:
        want = expected(value)
        got = now(value)
        assert same(got, want, ordered=False), (value, got)
        got = loop.run_until_complete(later(value))
        assert same(got, want, ordered=False), (value, got)

    check()


@pytest.mark.parametrize("name", list(BOUNDS))
def test_out_of_range_ints_raise_overflow_naming_the_parameter(
    testlib: asyncffi.Library, loop: asyncio.AbstractEventLoop, name: str
) -> None:
    now, later = functions(testlib, name)
    low, high = BOUNDS[name]
    outside = st.integers(max_value=low - 1) | st.integers(min_value=high + 1)

    @SETTINGS
    @given(bad=outside)
    def check(bad: int) -> None:
        with pytest.raises(OverflowError, match=rf"argument 'x': {bad} is out of range for"):
            now(bad)
        with pytest.raises(OverflowError, match=rf"argument 'x': {bad} is out of range for"):
            later(bad)  # checked when called, before anything runs in Rust

    check()


@pytest.mark.parametrize(
    ("name", "bad"),
    [("vec_i8", [1, 128]), ("vec_u64", [-1]), ("btreemap", {"a": [65536]})],
)
def test_out_of_range_ints_in_containers_name_the_parameter(
    testlib: asyncffi.Library, loop: asyncio.AbstractEventLoop, name: str, bad: Any
) -> None:
    now, later = functions(testlib, name)
    with pytest.raises(OverflowError, match=r"argument `x`: .*out of range for"):
        now(bad)
    with pytest.raises(OverflowError, match=r"argument `x`: .*out of range for"):
        loop.run_until_complete(later(bad))


def test_objects_round_trip_as_themselves(
    testlib: asyncffi.Library, loop: asyncio.AbstractEventLoop
) -> None:
    with testlib.Notebook(2) as book:
        loop.run_until_complete(book.add("kept"))
        for back in (
            testlib.rt_object(book),
            loop.run_until_complete(testlib.rt_object_later(book)),
        ):
            # Another handle on the same Rust object, in its class.
            assert type(back) is testlib.Notebook
            assert back.handle != book.handle
            assert back.notes() == ["kept"]
            back.close()
        assert book.notes() == ["kept"]


def test_a_scalar_alias_named_in_the_export_travels_as_a_scalar(
    testlib: asyncffi.Library,
) -> None:
    manifest = read(testlib.lib, testlib.path)
    assert manifest is not None
    by_name = {fn["name"]: fn for fn in manifest["functions"]}
    for name in ("rt_alias", "rt_alias_later"):
        (param,) = by_name[name]["params"]
        assert (param["name"], param["abi"], param["type"]["rust"]) == ("id", "u64", "u64")
    assert by_name["rt_u64"]["params"][0]["abi"] == "u64"
    with pytest.raises(OverflowError, match=r"rt_alias\(\) argument 'id': -1 is out of range"):
        testlib.rt_alias(-1)
