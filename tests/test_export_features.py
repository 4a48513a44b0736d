"""What the export macros offer beyond plain parameters, through the test library's exports
(``rust/testlib/src/exported.rs``) and the built-ins (``rust/native``, written the same way):
the caller's runtime, durations, ``*args``, tagged values, ``buffer=`` and ``prefetch=``,
parameter options (defaults, keyword-only, ``min``), errors raised as built-in exceptions,
and the ``.pyi`` stubs made from a manifest."""

from __future__ import annotations

import inspect
import math
import subprocess
import sys
import typing
from typing import Any, AsyncIterable, Iterable, Optional, Union

import asyncffi
import pytest
from asyncffi import demo
from asyncffi._stubs import library_stubs
from asyncffi.pytest_plugin import assert_clean_exit

KW = inspect.Parameter.KEYWORD_ONLY


def test_signatures_of_the_new_parameter_kinds(testlib: asyncffi.Library) -> None:
    sig = inspect.signature(testlib.where_run)
    assert [(p.name, p.kind, p.default) for p in sig.parameters.values()] == [
        ("delay", inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.empty),
        ("label", KW, "x"),
        ("runtime", KW, "tokio"),
    ]
    assert [p.annotation for p in sig.parameters.values()] == [float, str, str]
    sig = inspect.signature(testlib.call_with)
    assert [(p.name, p.kind) for p in sig.parameters.values()] == [
        ("f", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        ("args", inspect.Parameter.VAR_POSITIONAL),
    ]
    sig = inspect.signature(testlib.repeat)
    assert list(sig.parameters) == ["value", "times", "buffer"]
    assert sig.parameters["times"].kind == KW and sig.parameters["times"].default == 2
    assert sig.parameters["buffer"].annotation == Optional[int]
    sig = inspect.signature(testlib.first_items)
    assert list(sig.parameters) == ["items", "n", "prefetch"]
    assert sig.parameters["prefetch"].kind == KW
    assert sig.parameters["items"].annotation == Union[AsyncIterable[Any], Iterable[Any]]


@pytest.mark.parametrize("runtime", ["tokio", "async-std", "loop"])
async def test_the_caller_picks_the_runtime(testlib: asyncffi.Library, runtime: str) -> None:
    assert await testlib.where_run(0.01, runtime=runtime) == f"{runtime}:x"
    assert await testlib.where_run(0, label="y", runtime=runtime) == f"{runtime}:y"
    assert await testlib.where_run(0.0) == "tokio:x"


def test_a_runtime_is_checked_when_called(testlib: asyncffi.Library) -> None:
    listed = "'tokio', 'async-std', 'loop', 'smol'"  # the test library registers smol
    with pytest.raises(ValueError, match=f"runtime must be one of {listed}, not 'trio'"):
        testlib.where_run(0, runtime="trio")
    with pytest.raises(TypeError, match="positional argument"):
        testlib.where_run(0, "label")


@pytest.mark.parametrize("seconds", [-1.0, -1, math.nan, math.inf])
async def test_bad_durations_are_value_errors(testlib: asyncffi.Library, seconds: float) -> None:
    call = testlib.where_run(seconds)  # refused by Rust when the call starts
    with pytest.raises(ValueError, match="argument `delay`: seconds must be a finite number >= 0"):
        await call
    with pytest.raises(TypeError, match=r"argument 'delay' must be float \(seconds\), not str"):
        testlib.where_run("1")


async def test_args_are_the_rest_of_the_positional_arguments(testlib: asyncffi.Library) -> None:
    assert await testlib.call_with(lambda *a: list(a), 1, "two", [3.0]) == [3, [1, "two", [3.0]]]
    assert await testlib.call_with(lambda: "none") == [0, "none"]
    with pytest.raises(TypeError, match="cannot pass 'object' objects"):
        testlib.call_with(print, object())


async def test_defaults_keywords_and_minimums(testlib: asyncffi.Library) -> None:
    assert [x async for x in testlib.repeat("a")] == ["a", "a"]
    assert [x async for x in testlib.repeat(None, times=3)] == [None] * 3
    with pytest.raises(TypeError, match="positional argument"):
        testlib.repeat("a", 3)
    assert await testlib.first_items(iter("abc"), 2) == ["a", "b"]
    # Below ``min``: ValueError naming the parameter, before the type's range (OverflowError).
    with pytest.raises(ValueError, match=r"first_items\(\) argument 'n' must be >= 1, got 0"):
        testlib.first_items([], 0)
    with pytest.raises(ValueError, match="argument 'n' must be >= 1, got -1"):
        testlib.first_items([], -1)
    with pytest.raises(OverflowError, match="argument 'n': 4294967296 is out of range for u32"):
        testlib.first_items([], 2**32)


async def test_buffer_and_prefetch_keywords(testlib: asyncffi.Library) -> None:
    assert [x async for x in testlib.repeat(1.5, times=5, buffer=1)] == [1.5] * 5
    with pytest.raises(ValueError, match="buffer must be >= 1"):
        testlib.repeat(1, buffer=0)
    assert await testlib.first_items(range(100), 10, prefetch=3) == list(range(10))
    assert await testlib.sum_items([1, 2, 3], prefetch=1) == 6
    with pytest.raises(ValueError, match=r"first_items\(\): prefetch must be >= 1"):
        testlib.first_items([], 1, prefetch=0)
    with pytest.raises(OverflowError, match="prefetch"):
        testlib.first_items([], 1, prefetch=2**64)


@pytest.mark.parametrize(
    "value", [None, True, -(2**63), 2**63 - 1, 1.5, "", "héllo", b"\x00", [1, {"a": None}]]
)
async def test_tagged_values_round_trip(testlib: asyncffi.Library, value: Any) -> None:
    assert [x async for x in testlib.repeat(value, times=1)] == [value]


async def test_builtin_errors_are_raised_as_python_exceptions(testlib: asyncffi.Library) -> None:
    assert await testlib.root(9.0) == 3.0
    with pytest.raises(ValueError, match=r"^root of -1$"):
        await testlib.root(-1)
    # The built-ins' gather_python: a count no list can hold, found once the call runs.
    with pytest.raises(ValueError, match="more results than a list can hold"):
        await demo.gather_python(print, 2**40)


def test_stubs_follow_the_manifest(testlib: asyncffi.Library) -> None:
    text = library_stubs(testlib.path, "The test library.")
    compile(text, "testlib.pyi", "exec")  # valid Python
    assert '"""The test library."""' in text
    assert (
        'def where_run(delay: float, *, label: str = "x", runtime: str = "tokio") '
        "-> RustCall[str]:" in text
    )
    assert "def call_with(f: Callable[..., Any], *args: Any) -> RustCall[Tuple[int, Any]]:" in text
    assert (
        "def repeat(value: Any, *, times: int = 2, buffer: Optional[int] = None) "
        "-> RustStream[Any]:" in text
    )
    assert "def words(text: str) -> List[str]:" in text
    assert "class Notebook(RustObject):" in text
    assert "    def __init__(self, capacity: Optional[int] = None) -> None:" in text
    assert "    @staticmethod\n    def merged(a: Notebook, b: Notebook) -> Notebook:" in text


def test_the_stubs_command_prints_them(testlib: asyncffi.Library) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "asyncffi", "stubs", testlib.path, "--exclude", "mix,words"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert_clean_exit(done)
    assert "def divide(" in done.stdout
    assert "def mix(" not in done.stdout and "def words(" not in done.stdout


def test_the_stubs_command_writes_and_checks_a_file(
    testlib: asyncffi.Library, tmp_path: Any
) -> None:
    pyi = tmp_path / "_exports.pyi"

    def stubs(*extra: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "asyncffi", "stubs", testlib.path]
        command += ["-o", str(pyi), *extra]
        return subprocess.run(command, capture_output=True, text=True, check=False)

    done = stubs("--check")  # no file yet: stale
    assert done.returncode == 1 and not pyi.exists()
    assert "is stale: run `python -m asyncffi stubs" in done.stdout
    done = stubs()
    assert done.returncode == 0 and done.stdout == "" and done.stderr == "", done.stderr
    assert pyi.read_text() == library_stubs(testlib.path)
    done = stubs("--check")
    assert done.returncode == 0 and "matches the manifest" in done.stdout
    pyi.write_text(pyi.read_text().replace("def divide(", "def split("))
    done = stubs("--check")
    assert done.returncode == 1 and "+def divide(" in done.stdout
    assert "def split(" in pyi.read_text()  # --check changes nothing
    bare = subprocess.run(
        [sys.executable, "-m", "asyncffi", "stubs", testlib.path, "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bare.returncode == 2 and "--check needs -o FILE" in bare.stderr


def test_records_are_typed_dicts_and_unions_in_stubs_and_at_run_time(
    testlib: asyncffi.Library,
) -> None:
    text = library_stubs(testlib.path)
    compile(text, "testlib.pyi", "exec")
    assert "class Event(TypedDict):\n" in text
    assert "    #: Its number.\n    id: int\n    name: str\n    tags: List[str]\n" in text
    assert "    note: Optional[str]\n" in text  # Point's Option<String>
    assert 'Shape = Union[Literal["Empty"], ShapeCircle, ShapeSegment, ShapeRect]' in text
    assert "class ShapeRect(TypedDict):" in text and "    Rect: ShapeRectFields" in text
    assert "    Segment: Tuple[int, int]" in text
    # A serde parameter named by its Rust type resolves the records in it.
    assert "def by_tag(events: List[Event]) -> RustCall[Dict[str, List[int]]]:" in text
    assert "def event(id: int, tags: List[str]) -> RustCall[Event]:" in text
    assert "def rt_shape(x: Shape) -> Shape:" in text

    event = testlib.types["Event"]
    assert typing.get_type_hints(event) == {"id": int, "name": str, "tags": typing.List[str]}
    assert event.__required_keys__ == {"id", "name", "tags"}
    assert testlib.Event is event
    shape = typing.get_args(testlib.types["Shape"])
    assert shape[0] == typing.Literal["Empty"]
    rect = testlib.types["ShapeRect"]
    assert typing.get_type_hints(rect) == {"Rect": testlib.types["ShapeRectFields"]}


async def test_a_list_of_records_crosses_by_serde(testlib: asyncffi.Library) -> None:
    events = [{"id": 1, "name": "a", "tags": ["x", "y"]}, {"id": 2, "name": "b", "tags": ["x"]}]
    assert await testlib.by_tag(events) == {"x": [1, 2], "y": [1]}
    assert testlib.rt_shape({"Segment": [3, -4]}) == {"Segment": [3, -4]}


def test_the_manifest_describes_records_field_by_field(testlib: asyncffi.Library) -> None:
    from asyncffi import _manifest
    from asyncffi._loader import open_native

    manifest = _manifest.read(open_native(testlib.path), testlib.path)
    assert manifest is not None
    records = {r["name"]: r for r in manifest["records"]}
    assert sorted(records) == ["Event", "Point", "Shape"]
    assert records["Event"]["kind"] == "struct"
    assert records["Event"]["rust"].endswith("::Event")
    assert [(f["name"], f["type"]["type"]) for f in records["Event"]["fields"]] == [
        ("id", "int"),
        ("name", "str"),
        ("tags", "list"),
    ]
    variants = {v["name"]: v for v in records["Shape"]["variants"]}
    assert [v["kind"] for v in records["Shape"]["variants"]] == [
        "unit",
        "newtype",
        "tuple",
        "struct",
    ]
    assert variants["Circle"]["type"] == {"type": "float", "rust": "f64"}
    assert [f["name"] for f in variants["Rect"]["fields"]] == ["w", "h"]
