"""Functions and objects built from a library's manifest: the test library's exports written
with ``#[asyncffi::export]`` / ``#[asyncffi::object]`` (``rust/testlib/src/exported.rs``),
called through the wrappers ``asyncffi.load`` generates, with no declaration by hand."""

from __future__ import annotations

import asyncio
import gc
import inspect
from typing import Any, AsyncIterable, Callable, Dict, Iterable, List, Optional, Union

import anyio
import asyncffi
import pytest
from asyncffi import demo
from asyncffi._loader import ABI_VERSION, ffi
from asyncffi._manifest import _function, declaration, read
from conftest import every_backend, wait_for_stat


def test_exports_are_attributes_listed_by_dir(testlib: asyncffi.Library) -> None:
    names = set(dir(testlib))
    for name in ("mix", "words", "divide", "greet", "steps", "Notebook", "fresh_notebook"):
        assert name in names
        assert name in testlib.exports
    assert "call" in names  # the Library's own attributes stay
    with pytest.raises(AttributeError, match="exports no 'nope'"):
        testlib.nope  # noqa: B018


def test_signatures_annotations_and_docstrings(testlib: asyncffi.Library) -> None:
    mix = testlib.mix
    sig = inspect.signature(mix)
    assert list(sig.parameters) == ["small", "port", "count", "big", "label"]
    assert [p.annotation for p in sig.parameters.values()] == [int, int, int, int, str]
    assert sig.return_annotation == asyncffi.RustCall[str]
    assert mix.__doc__ == 'Mixes ints of several widths with a label.\n\nReturns `"<label>:<sum>"`.'
    assert mix.__name__ == "mix"
    assert mix.__qualname__ == "mix"
    assert mix.__module__ == testlib.name

    greet = inspect.signature(testlib.greet)
    assert greet.parameters["times"].default is None
    assert greet.parameters["times"].annotation == Optional[int]
    assert greet.parameters["name"].default is inspect.Parameter.empty

    assert inspect.signature(testlib.words).return_annotation == List[str]
    assert inspect.signature(testlib.above).parameters["scores"].annotation == Dict[str, float]
    assert inspect.signature(testlib.steps).return_annotation == asyncffi.RustStream[int]
    assert inspect.signature(testlib.event).return_annotation == asyncffi.RustCall[Dict[str, Any]]
    calls = inspect.signature(testlib.sum_calls).parameters["f"].annotation
    assert calls == Callable[..., Any]
    items = inspect.signature(testlib.sum_items).parameters["items"].annotation
    assert items == Union[AsyncIterable[Any], Iterable[Any]]

    Notebook = testlib.Notebook
    assert issubclass(Notebook, asyncffi.RustObject)
    assert Notebook.__doc__ == "A bounded list of notes."
    assert str(inspect.signature(Notebook)) == "(capacity: Optional[int] = None)"
    assert Notebook.add.__qualname__ == "Notebook.add"
    assert Notebook.add.__doc__.startswith("Adds `note`")
    assert list(inspect.signature(Notebook.add).parameters) == ["self", "note"]
    merged = inspect.signature(Notebook.merged)
    assert [p.annotation for p in merged.parameters.values()] == [Notebook, Notebook]
    assert merged.return_annotation is Notebook
    assert inspect.signature(testlib.count_notes).parameters["book"].annotation is Notebook


def test_declarations_follow_the_abi() -> None:
    fn = {
        "symbol": "x_f",
        "kind": "stream",
        "role": "method",
        "params": [
            {"abi": "i64"},
            {"abi": "buffer"},
            {"abi": "f64"},
            {"abi": "u32"},
            {"abi": "callable"},
        ],
    }
    assert declaration(fn) == (
        "int64_t x_f(uint64_t port, uint64_t token, uint64_t self, int64_t p0, "
        "const uint8_t *p1_data, size_t p1_len, double p2, uint32_t p3, uint64_t p4, "
        "uint64_t buffer);"
    )
    sync = {"symbol": "x_g", "kind": "sync", "role": "function", "params": [{"abi": "u64"}]}
    assert declaration(sync) == "int32_t x_g(uint64_t p0, void *out);"


async def test_async_round_trips(testlib: asyncffi.Library) -> None:
    assert await testlib.mix(-128, 65535, 4294967295, -(2**63), "sum") == (
        f"sum:{-128 + 65535 + 4294967295 - 2**63}"
    )
    assert await testlib.mix(small=1, port=2, count=3, big=4, label="kw") == "kw:10"
    assert await testlib.greet("ann") == "hello ann"
    assert await testlib.greet("ann", 2) == "hello ann, hello ann"
    assert await testlib.greet("ann", None) == "hello ann"
    assert await testlib.event(2**40, ["a", "b"]) == {
        "id": 2**40,
        "name": f"event-{2**40}",
        "tags": ["a", "b"],
    }
    call = testlib.lookup("two")
    assert isinstance(call, asyncffi.RustCall)
    assert await call == 2


async def test_errors_carry_their_kind(testlib: asyncffi.Library) -> None:
    with pytest.raises(asyncffi.RustError, match="no key three") as info:
        await testlib.lookup("three")
    assert info.value.kind == "missing"


def test_sync_results_and_errors(testlib: asyncffi.Library) -> None:
    assert testlib.words("  the quick  fox ") == ["the", "quick", "fox"]
    assert testlib.words("") == []
    assert testlib.divide(-7, 2) == -3
    assert testlib.above({"a": 1.5, "b": 3, "c": 2.5}, 2) == 2
    with pytest.raises(asyncffi.RustError, match="7 / 0") as info:
        testlib.divide(7, 0)
    assert info.value.kind == "math"


def test_range_errors_name_the_parameter(testlib: asyncffi.Library) -> None:
    with pytest.raises(
        OverflowError, match=r"mix\(\) argument 'small': 128 is out of range for i8"
    ):
        testlib.mix(128, 0, 0, 0, "x")
    with pytest.raises(OverflowError, match=r"argument 'port': -1 is out of range for u16"):
        testlib.mix(0, -1, 0, 0, "x")
    with pytest.raises(OverflowError, match=r"argument 'count': 4294967296 .* u32"):
        testlib.mix(0, 0, 2**32, 0, "x")
    with pytest.raises(OverflowError, match=r"argument 'big'"):
        testlib.mix(0, 0, 0, 2**63, "x")
    with pytest.raises(OverflowError, match=r"argument 'id': -1 is out of range for u64"):
        testlib.event(-1, [])
    with pytest.raises(OverflowError, match=r"greet\(\) argument 'times': 256 .* u8"):
        testlib.greet("x", 256)
    with pytest.raises(OverflowError, match=r"divide\(\) argument 'b'"):
        testlib.divide(1, -(2**63) - 1)


def test_type_errors_name_the_parameter_and_type(testlib: asyncffi.Library) -> None:
    with pytest.raises(TypeError, match=r"mix\(\) argument 'small' must be int \(i8\), not str"):
        testlib.mix("1", 0, 0, 0, "x")
    with pytest.raises(TypeError, match=r"argument 'small' must be int \(i8\), not float"):
        testlib.mix(1.0, 0, 0, 0, "x")
    with pytest.raises(TypeError, match=r"argument 'label' must be str, not bytes"):
        testlib.mix(0, 0, 0, 0, b"x")
    with pytest.raises(TypeError, match=r"argument 'tags' must be list\[str\], not str"):
        testlib.event(1, "abc")
    with pytest.raises(TypeError, match=r"argument 'times' must be int \(u8\) or None"):
        testlib.greet("x", "2")
    with pytest.raises(TypeError, match=r"words\(\) argument 'text' must be str, not int"):
        testlib.words(3)
    with pytest.raises(TypeError, match=r"argument 'floor' must be float, not str"):
        testlib.above({}, "1")
    with pytest.raises(TypeError, match=r"sum_calls\(\) argument 'f' must be callable, not int"):
        testlib.sum_calls(3, 1)
    with pytest.raises(TypeError, match=r"sum_items\(\) argument 'items' must be an async"):
        testlib.sum_items("abc")
    with pytest.raises(TypeError):
        testlib.mix(1, 2)  # missing arguments: Python's own check


async def test_streams(testlib: asyncffi.Library) -> None:
    stream = testlib.steps(10, -3, 5)
    assert isinstance(stream, asyncffi.RustStream)
    assert [x async for x in stream] == [10, 7, 4, 1, -2]
    assert [x async for x in testlib.steps(0, 1, 0)] == []
    with pytest.raises(OverflowError, match="argument 'n'"):
        testlib.steps(0, 1, -1)


async def test_callables_and_iterators_are_lent(testlib: asyncffi.Library) -> None:
    async def times_ten(i: int) -> int:
        await asyncio.sleep(0)
        return i * 10

    assert await testlib.sum_calls(times_ten, 4) == 60
    assert await testlib.sum_calls(lambda i: i + 1, 3) == 6

    async def numbers() -> Any:
        for i in range(5):
            yield i

    assert await testlib.sum_items(numbers()) == 10
    assert await testlib.sum_items([1, 2, 3]) == 6

    def boom(i: int) -> int:
        raise KeyError("from python")

    with pytest.raises(KeyError, match="from python"):
        await testlib.sum_calls(boom, 1)


async def test_objects(testlib: asyncffi.Library) -> None:
    Notebook = testlib.Notebook
    with Notebook(2) as book:
        assert isinstance(book, asyncffi.RustObject)
        assert book.library is testlib
        assert await book.add("one") == 1
        assert await book.add("two") == 2
        with pytest.raises(asyncffi.RustError, match="full"):
            await book.add("three")
        assert book.len() == 2
        assert book.notes() == ["one", "two"]
        assert await testlib.count_notes(book) == 2
        other = testlib.fresh_notebook()
        assert type(other) is Notebook
        await other.add("three")
        merged = Notebook.merged(book, other)
        assert type(merged) is Notebook
        assert merged.notes() == ["one", "two", "three"]
        merged.close()
        other.close()
    assert book.closed
    with pytest.raises(asyncffi.ClosedError):
        book.len()
    with pytest.raises(asyncffi.ClosedError):
        book.add("x")
    with pytest.raises(asyncffi.ClosedError):
        testlib.count_notes(book)
    assert Notebook().len() == 0  # the default capacity; collected at once


async def test_objects_come_back_in_their_class_wherever_they_are_returned(
    testlib: asyncffi.Library,
) -> None:
    Notebook = testlib.Notebook
    # async, sync and async inside an Option, an async method, stream items
    later = await testlib.notebook_later(3)
    assert type(later) is Notebook
    assert await later.add("a") == 1
    maybe = testlib.maybe_notebook(True)
    assert type(maybe) is Notebook and maybe.len() == 0
    assert testlib.maybe_notebook(False) is None
    maybe_later = await testlib.maybe_notebook_later(True)
    assert type(maybe_later) is Notebook and maybe_later.len() == 0
    assert await testlib.maybe_notebook_later(False) is None
    copy = await later.copy()
    assert type(copy) is Notebook and copy.notes() == ["a"]
    books = [book async for book in testlib.notebooks(3)]
    assert [type(book) for book in books] == [Notebook] * 3
    for capacity, book in enumerate(books, 1):
        for i in range(capacity):
            await book.add(str(i))
        with pytest.raises(asyncffi.RustError, match="full"):
            await book.add("over")
    for book in [later, maybe, maybe_later, copy, *books]:
        book.close()


async def test_temporaries_live_until_the_call_starts(testlib: asyncffi.Library) -> None:
    assert await testlib.count_notes(testlib.fresh_notebook()) == 0
    assert await testlib.Notebook(1).add("x") == 1
    assert testlib.Notebook.merged(testlib.Notebook(), testlib.fresh_notebook()).len() == 0


def test_constructor_failing(testlib: asyncffi.Library) -> None:
    with pytest.raises(asyncffi.RustError, match="capacity must be > 0"):
        testlib.Notebook(0)
    with pytest.raises(OverflowError, match="argument 'capacity'"):
        testlib.Notebook(-1)
    with pytest.raises(TypeError, match="argument 'capacity'"):
        testlib.Notebook("8")


async def test_objects_of_another_library_are_refused(testlib: asyncffi.Library) -> None:
    counter = demo.Counter()
    try:
        with pytest.raises(TypeError, match="belongs to the library"):
            testlib.count_notes(counter)
        with pytest.raises(TypeError, match="belongs to the library"):
            testlib.Notebook.merged(counter, counter)
        with pytest.raises(TypeError, match="argument 'book' must be Notebook, not str"):
            testlib.count_notes("book")
    finally:
        counter.close()


async def test_side_by_side_with_the_builtins(testlib: asyncffi.Library, runtime: str) -> None:
    book = testlib.Notebook(100)
    try:
        results = await asyncio.gather(
            demo.add(1, 2),
            testlib.mix(1, 2, 3, 4, "a"),
            demo.echo("x", runtime=runtime),
            *(book.add(str(i)) for i in range(20)),
            testlib.greet("b"),
            demo.sleep(0.01, runtime=runtime),
        )
        assert results[:3] == [3, "a:10", "x"]
        assert sorted(results[3:23]) == list(range(1, 21))
        assert results[23:] == ["hello b", None]
        steps, counted = await asyncio.gather(
            _collect(testlib.steps(0, 2, 50)), _collect(demo.count(50, runtime=runtime))
        )
        assert steps == [2 * i for i in range(50)]
        assert counted == list(range(50))
        assert book.len() == 20
    finally:
        book.close()


async def _collect(stream: Any) -> List[Any]:
    return [x async for x in stream]


@every_backend
async def test_generated_wrappers_on_every_backend(testlib: asyncffi.Library) -> None:
    async with anyio.create_task_group() as tg:
        results: List[Any] = []

        async def one(call: Any) -> None:
            results.append(await call)

        tg.start_soon(one, testlib.mix(1, 1, 1, 1, "t"))
        tg.start_soon(one, testlib.greet("t"))
        tg.start_soon(one, demo.add(2, 2))
    assert sorted(map(str, results)) == ["4", "hello t", "t:4"]
    assert [x async for x in testlib.steps(0, 1, 3)] == [0, 1, 2]
    with testlib.Notebook() as book:
        assert await book.add("x") == 1


async def test_python_keywords_as_names() -> None:
    # A manifest entry describing the built-ins' ``add(port, token, a, b)`` with
    # names that are Python keywords (``r#async`` and friends in Rust).
    i64 = {"type": "int", "rust": "i64", "min": -(2**63), "max": 2**63 - 1}
    entry = {
        "name": "async",
        "kind": "async",
        "role": "function",
        "params": [{"name": n, "type": i64, "abi": "i64"} for n in ("from", "lambda")],
        "returns": i64,
        "doc": "Adds.",
    }
    library = demo.library
    # Building a wrapper names its C function; this one is the built-ins' ``add``, whose
    # name the rest of the suite's messages rely on: put it back afterwards.
    names = dict(library.python_names)
    try:
        c_fn = library.manifest_functions.asyncffi_native_add
        fn = _function(entry, c_fn, library, {}, "async", "m")
        assert fn.__name__ == "async"
        assert list(inspect.signature(fn).parameters) == ["from_", "lambda_"]
        assert await fn(40, lambda_=2) == 42
        with pytest.raises(OverflowError, match=r"async\(\) argument 'from'"):
            fn(2**63, 0)
    finally:
        library.python_names.clear()
        library.python_names.update(names)


class _FakeLibrary:
    """Exports ``text`` as its manifest."""

    def __init__(self, text: str) -> None:
        data = text.encode()
        self.buf = ffi.new("uint8_t[]", list(data) or [0])
        self.size = len(data)

    def affi_manifest(self, size: Any) -> Any:
        size[0] = self.size
        return self.buf


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{nope", "not JSON"),
        ('{"format": "other", "version": 1}', "exports no asyncffi-manifest"),
        ('{"format": "asyncffi-manifest", "version": 2}', "manifest version 2, this"),
        (
            f'{{"format": "asyncffi-manifest", "version": 1, "abi": {ABI_VERSION + 1}}}',
            f"C ABI version {ABI_VERSION + 1}",
        ),
    ],
)
def test_unknown_manifests_are_refused(text: str, message: str) -> None:
    with pytest.raises(ImportError, match=message):
        read(_FakeLibrary(text), "libx.so")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "function",
    [
        '{"name": "f(); import os", "symbol": "f", "params": []}',
        '{"name": "f", "symbol": "f(void); int g", "params": []}',
        '{"name": "f", "symbol": "f", "params": [{"name": "x=1", "type": {}, "abi": "i64"}]}',
        '{"name": 3, "symbol": "f", "params": []}',
    ],
)
def test_names_that_are_not_identifiers_are_refused(function: str) -> None:
    # Names go into generated C declarations and Python source: a damaged manifest is refused.
    text = f'{{"format": "asyncffi-manifest", "version": 1, "abi": {ABI_VERSION}, '
    text += f'"functions": [{function}], "objects": []}}'
    with pytest.raises(ImportError, match="not an identifier"):
        read(_FakeLibrary(text), "libx.so")  # type: ignore[arg-type]


def test_an_empty_manifest_builds_nothing() -> None:
    text = f'{{"format": "asyncffi-manifest", "version": 1, "abi": {ABI_VERSION}, '
    assert read(_FakeLibrary(text + '"functions": [], "objects": []}'), "x") is None  # type: ignore[arg-type]
    assert read(_FakeLibrary(""), "x") is None  # type: ignore[arg-type]
    # The built-ins' manifest is not empty: ``asyncffi.demo`` is made from it.
    assert set(demo.__all__) <= set(demo.library.exports)


async def test_objects_left_to_the_garbage_collector_are_freed(testlib: asyncffi.Library) -> None:
    before = testlib.stats()["live_objects"]
    books = [testlib.Notebook(), testlib.fresh_notebook()]
    assert await books[0].add("x") == 1
    assert testlib.stats()["live_objects"] == before + 2
    del books
    gc.collect()
    assert await wait_for_stat("live_objects", 0) == 0
    assert testlib.stats()["live_objects"] == before
