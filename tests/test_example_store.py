"""``examples/store``, the library a Rust author writes with asyncffi (``src/lib.rs``: three
attributes, no glue), used as its users use it: ``import store``. Every function runs against
real counterparts: ``fetch_lines`` reads from a TCP server started here with
``asyncio.start_server``, ``for_each`` awaits Python callbacks, ``events`` streams from
async-std's timer, and ``Store`` goes through ``with``, ``async with``, ``close()`` and the
garbage collector.

The package comes from ``ASYNCFFI_EXAMPLE_STORE``, a directory it was installed into
(scripts/test.sh builds its wheel once and sets it; the tests fail if the directory holds no
``store``), else from the environment (``pip install ./examples/store``).

The same checks run against ``examples/store_pyo3``, the same library written with PyO3 +
pyo3-async-runtimes, when ``ASYNCFFI_EXAMPLE_STORE_PYO3=1`` (build it first with
``maturin develop --release -m examples/store_pyo3/Cargo.toml``); what differs is only how
errors are typed (``RustError`` with a kind here, a Python exception class there) and what
``inspect.signature`` knows."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import importlib.util
import inspect
import os
import pydoc
import re
import socket
import sys
import time
import weakref
from dataclasses import dataclass
from types import ModuleType
from typing import Any, AsyncIterator, Dict, Iterator, List, Optional, Tuple, Type

import asyncffi
import pytest
from conftest import ROOT, every_backend, wait_for_stat

#: The directory scripts/test.sh installed the example package into.
STORE_ENV = "ASYNCFFI_EXAMPLE_STORE"
#: Set to 1 to run the checks against the PyO3 version too.
PYO3_ENV = "ASYNCFFI_EXAMPLE_STORE_PYO3"


def import_store() -> ModuleType:
    """The example's package, from ``ASYNCFFI_EXAMPLE_STORE`` or the environment; missing, it
    fails the test with how to build it."""
    where = os.environ.get(STORE_ENV)
    if "store" in sys.modules:
        return sys.modules["store"]
    if where:
        if not os.path.isdir(os.path.join(where, "store")):
            pytest.fail(
                f"{STORE_ENV}={where} holds no package `store`: scripts/test.sh installs it "
                "there (pip install --target ... the wheel of examples/store)",
                pytrace=False,
            )
        sys.path.insert(0, where)
    try:
        return importlib.import_module("store")
    except ImportError as e:
        pytest.fail(
            f"the example package `store` cannot be imported ({e}): install it with "
            f"`pip install ./examples/store`, or point {STORE_ENV} at a directory it was "
            "installed into (scripts/test.sh does both)",
            pytrace=False,
        )
    finally:
        if where:
            sys.path.remove(where)


@dataclass
class Impl:
    """One implementation of the example: its module and how its errors are typed."""

    name: str
    module: ModuleType

    def error(self, kind: str) -> Type[BaseException]:
        """The exception class an error of ``kind`` (asyncffi's kind names) is raised as."""
        if self.name == "asyncffi":
            return asyncffi.ClosedError if kind == "closed" else asyncffi.RustError
        classes: Dict[str, Type[BaseException]] = {
            "closed": self.module.ClosedError,
            "MyError": self.module.MyError,
            "ConnectionRefused": ConnectionRefusedError,
            "InvalidData": OSError,
            "TypeError": TypeError,
        }
        return classes[kind]

    @contextlib.contextmanager
    def raises(self, kind: str, match: str) -> Iterator[None]:
        """Expects an error of ``kind`` whose message matches ``match``."""
        with pytest.raises(self.error(kind), match=match) as info:
            yield
        if self.name == "asyncffi" and kind != "closed":
            assert info.value.kind == kind  # type: ignore[attr-defined]


def implementations() -> List[str]:
    return ["asyncffi", "pyo3"] if os.environ.get(PYO3_ENV) == "1" else ["asyncffi"]


@pytest.fixture(params=implementations())
def impl(request: pytest.FixtureRequest) -> Impl:
    if request.param == "asyncffi":
        return Impl("asyncffi", import_store())
    try:
        return Impl("pyo3", importlib.import_module("store_pyo3"))
    except ImportError as e:
        pytest.fail(
            f"{PYO3_ENV}=1 but store_pyo3 cannot be imported ({e}): build it with "
            "`maturin develop --release -m examples/store_pyo3/Cargo.toml`",
            pytrace=False,
        )


@pytest.fixture
def store() -> ModuleType:
    """The asyncffi implementation alone."""
    return import_store()


# --- a line server ------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def line_server(payload: bytes, *, hold: bool = False) -> AsyncIterator[Tuple[int, Any]]:
    """A TCP server on 127.0.0.1 that writes ``payload`` to each client and closes the
    connection (or, with ``hold``, keeps it open until the client goes). Yields its port and
    a record: ``connections`` (count) and ``eofs`` (clients that closed their side)."""

    class Record:
        connections = 0
        eofs = 0

    record = Record()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        record.connections += 1
        writer.write(payload)
        await writer.drain()
        if hold:
            await reader.read()  # returns b"" when the client closes its socket
            record.eofs += 1
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port, record
    finally:
        server.close()
        await server.wait_closed()


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


LINES = [f"line {i}: é" for i in range(10)]


# --- fetch_lines ----------------------------------------------------------------------------------


async def test_fetch_lines_reads_from_a_tcp_server(impl: Impl) -> None:
    # "\n" and "\r\n" both end a line; the last line needs no ending.
    payload = ("\n".join(LINES[:5]) + "\r\n" + "\r\n".join(LINES[5:])).encode()
    async with line_server(payload) as (port, record):
        assert await impl.module.fetch_lines("127.0.0.1", port, 3) == LINES[:3]
        assert await impl.module.fetch_lines("127.0.0.1", port, 100) == LINES  # server closed
        assert await impl.module.fetch_lines(host="localhost", port=port, n=0) == []
        results = await asyncio.gather(
            *(impl.module.fetch_lines("127.0.0.1", port, i) for i in range(20))
        )
        assert results == [LINES[:i] for i in range(20)]
        assert record.connections == 23


async def test_fetch_lines_errors_carry_the_io_kind(impl: Impl) -> None:
    with impl.raises("ConnectionRefused", "refused"):
        await impl.module.fetch_lines("127.0.0.1", closed_port(), 1)
    async with line_server(b"ok\n\xff\xfe\n") as (port, _):
        with impl.raises("InvalidData", "invalid utf-8 sequence"):
            await impl.module.fetch_lines("127.0.0.1", port, 2)
    with pytest.raises(OverflowError):
        impl.module.fetch_lines("127.0.0.1", 65536, 1)
    with pytest.raises(TypeError):
        impl.module.fetch_lines("127.0.0.1", "80", 1)


async def test_fetch_lines_arguments_are_checked_at_the_call(store: ModuleType) -> None:
    with pytest.raises(OverflowError, match=r"fetch_lines\(\) argument 'port': 65536"):
        store.fetch_lines("127.0.0.1", 65536, 1)
    with pytest.raises(OverflowError, match=r"argument 'n': -1 is out of range for u32"):
        store.fetch_lines("127.0.0.1", 1, -1)
    with pytest.raises(TypeError, match=r"argument 'host' must be str, not bytes"):
        store.fetch_lines(b"127.0.0.1", 1, 1)


async def test_cancelling_fetch_lines_closes_its_connection(impl: Impl) -> None:
    async with line_server(b"only one line\n", hold=True) as (port, record):
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(impl.module.fetch_lines("127.0.0.1", port, 2), 0.5)
        # The Rust future was dropped with its TcpStream: the server reads end-of-file.
        deadline = time.monotonic() + 5
        while record.eofs < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert (record.connections, record.eofs) == (1, 1)


# --- events -------------------------------------------------------------------------------------


def event(i: int) -> Dict[str, Any]:
    return {"id": i, "name": f"event-{i}", "tags": ["even" if i % 2 == 0 else "odd"]}


async def test_events_stream_on_async_std_timer(impl: Impl) -> None:
    began = time.monotonic()
    got = [e async for e in impl.module.events(5, 20)]
    assert got == [event(i) for i in range(5)]
    assert time.monotonic() - began >= 0.09  # five sleeps of 20 ms, give or take the clock
    assert [e async for e in impl.module.events(0, 1000)] == []


async def test_events_errors_and_early_exit(impl: Impl) -> None:
    stream = impl.module.events(3, 60_001)
    with impl.raises("MyError", "every_ms must be at most 60000, not 60001"):
        async for _ in stream:
            pass
    # Leaving the loop early: the Rust stream is dropped (the live counters return to zero).
    async for e in impl.module.events(1000, 1):
        assert e == event(0)
        break


async def test_events_with_a_deadline(impl: Impl) -> None:
    got: List[Dict[str, Any]] = []

    async def read() -> None:
        async for e in impl.module.events(1000, 10):
            got.append(e)

    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(read(), 0.3)
    assert 1 <= len(got) < 100  # at most one item per 10 ms
    assert got == [event(i) for i in range(len(got))]


# --- for_each -----------------------------------------------------------------------------------


async def test_for_each_awaits_python_callbacks(impl: Impl) -> None:
    assert await impl.module.for_each(lambda i: i * 10, 5) == 100
    seen: List[int] = []

    async def handler(i: int) -> int:
        await asyncio.sleep(0.001)
        seen.append(i)
        return i

    assert await impl.module.for_each(handler, 20) == sum(range(20))
    assert seen == list(range(20))  # one after another, in order
    assert await impl.module.for_each(handler, 0) == 0


async def test_for_each_raises_the_callbacks_exception(impl: Impl) -> None:
    class Boom(Exception):
        pass

    async def handler(i: int) -> int:
        if i == 3:
            raise Boom(f"at {i}")
        return i

    with pytest.raises(Boom, match="at 3"):
        await impl.module.for_each(handler, 10)
    with impl.raises("TypeError", r"handler\(0\) returned .*, not an int"):
        await impl.module.for_each(lambda i: "text", 2)


# --- version --------------------------------------------------------------------------------------


def test_version_is_the_crates(impl: Impl) -> None:
    cargo = (ROOT / "examples" / "store" / "Cargo.toml").read_text(encoding="utf-8")
    match = re.search(r'^version = "([^"]+)"', cargo, re.M)
    assert match is not None
    assert impl.module.version() == match.group(1)  # a sync function: no await


# --- Store --------------------------------------------------------------------------------------


async def test_store_with_block(impl: Impl) -> None:
    with impl.module.Store(2) as s:
        assert await s.get("a") is None
        await s.set("a", b"1")
        await s.set("b", b"\x00" * 100_000)
        assert await s.get("a") == b"1"
        assert await s.get("b") == b"\x00" * 100_000
        assert s.len() == 2
        await s.set("a", b"one")  # an existing key: nothing is dropped
        await s.set("c", b"3")  # a third key: the oldest ("a") goes
        got = (await s.get("a"), await s.get("b"), await s.get("c"))
        assert got == (None, bytes(100_000), b"3")
        assert s.len() == 2
    assert s.closed
    for use in (lambda: s.get("a"), lambda: s.set("a", b""), s.len):
        with impl.raises("closed", "Store is closed"):
            use()
    s.close()  # idempotent


async def test_store_async_with_and_concurrent_calls(impl: Impl) -> None:
    async with impl.module.Store() as s:
        await asyncio.gather(*(s.set(f"k{i}", str(i).encode()) for i in range(200)))
        assert s.len() == 200
        values = await asyncio.gather(*(s.get(f"k{i}") for i in range(200)))
        assert values == [str(i).encode() for i in range(200)]
    assert s.closed
    with impl.raises("closed", "Store is closed"):
        async with s:
            pass


async def test_store_errors(impl: Impl) -> None:
    with impl.raises("MyError", "capacity must be at least 1"):
        impl.module.Store(0)
    with pytest.raises(OverflowError):
        impl.module.Store(-1)
    with pytest.raises(TypeError):
        impl.module.Store("8")
    s = impl.module.Store(capacity=1)
    try:
        with pytest.raises(TypeError):
            s.set("k", "not bytes")
        with pytest.raises(TypeError):
            s.get(1)
    finally:
        s.close()


async def test_store_left_to_the_garbage_collector_is_freed(impl: Impl) -> None:
    s = impl.module.Store()
    await s.set("k", b"v")
    ref = weakref.ref(s)
    del s
    gc.collect()
    assert ref() is None


async def test_store_objects_are_counted_and_freed(store: ModuleType) -> None:
    lib = store._lib
    stores = [store.Store() for _ in range(3)]
    await stores[0].set("k", b"v")
    assert lib.stats()["live_objects"] == 3
    stores[0].close()
    assert lib.stats()["live_objects"] == 2
    del stores
    gc.collect()
    assert await wait_for_stat("live_objects", 0) == 0


# --- what Python sees ---------------------------------------------------------------------------


def test_signatures_and_docstrings(impl: Impl) -> None:
    m = impl.module

    def params(fn: Any) -> List[Tuple[str, Any]]:
        return [
            (p.name, p.default)
            for p in inspect.signature(fn).parameters.values()
            if p.name != "self"
        ]

    empty = inspect.Parameter.empty
    assert params(m.fetch_lines) == [("host", empty), ("port", empty), ("n", empty)]
    # A stream function also takes a keyword-only ``buffer`` (how far Rust runs ahead).
    assert params(m.events) == [("n", empty), ("every_ms", empty), ("buffer", None)]
    assert inspect.signature(m.events).parameters["buffer"].kind is inspect.Parameter.KEYWORD_ONLY
    assert params(m.for_each) == [("handler", empty), ("n", empty)]
    assert params(m.version) == []
    assert params(m.Store) == [("capacity", None)]
    assert params(m.Store.get) == [("key", empty)]
    assert params(m.Store.set) == [("key", empty), ("value", empty)]
    assert m.fetch_lines.__doc__.startswith("Connects to `host:port` and reads `n` lines")
    assert m.events.__doc__.startswith("`n` events, one every `every_ms` milliseconds")
    assert m.for_each.__doc__.startswith("Awaits `handler(i)` for each `i` in `0..n`")
    assert m.version.__doc__ == "The library's version."
    assert m.Store.__doc__.startswith("A key-value store in memory holding at most `capacity`")
    assert m.Store.get.__doc__ == "The value of `key`, or None."
    assert m.Store.len.__doc__ == "How many keys the store holds."


def test_annotations_and_help(store: ModuleType) -> None:
    sig = inspect.signature(store.fetch_lines)
    assert [p.annotation for p in sig.parameters.values()] == [str, int, int]
    assert sig.return_annotation == asyncffi.RustCall[List[str]]
    assert inspect.signature(store.events).return_annotation == asyncffi.RustStream[Dict[str, Any]]
    assert inspect.signature(store.for_each).return_annotation == asyncffi.RustCall[int]
    assert inspect.signature(store.version).return_annotation is str
    assert str(inspect.signature(store.Store)) == "(capacity: Optional[int] = None)"
    get = inspect.signature(store.Store.get)
    assert get.return_annotation == asyncffi.RustCall[Optional[bytes]]
    assert inspect.signature(store.Store.set).parameters["value"].annotation is bytes
    assert issubclass(store.Store, asyncffi.RustObject)
    text = pydoc.render_doc(store.Store, renderer=pydoc.plaintext)
    assert "Store(capacity: Optional[int] = None)" in text
    assert "get(self, key: str)" in text
    assert "Sets `key` to `value`; a new key beyond the capacity drops the oldest one." in text
    assert "An I/O error is raised with its kind" in pydoc.render_doc(
        store.fetch_lines, renderer=pydoc.plaintext
    )


def test_the_package_loads_the_cdylib_it_ships(store: ModuleType) -> None:
    lib = store._lib
    assert isinstance(lib, asyncffi.Library)
    assert lib.name == "store._native"
    package_dir = os.path.dirname(os.path.abspath(store.__file__))
    assert os.path.dirname(lib.path) == os.path.join(package_dir, "_native")
    assert os.path.basename(lib.path).startswith("lib_native.")
    assert lib in asyncffi.libraries()
    assert asyncffi.load_packaged("store", "_native") is lib
    assert sorted(lib.exports) == ["Store", "events", "fetch_lines", "for_each", "version"]
    assert sorted(store.__all__) == sorted(lib.exports)


async def test_store_objects_stay_with_their_library(
    store: ModuleType, testlib: asyncffi.Library
) -> None:
    s = store.Store()
    try:
        with pytest.raises(TypeError, match=r"belongs to the library store\._native"):
            testlib.count_notes(s)
    finally:
        s.close()


@every_backend
async def test_store_on_every_backend(backend: str) -> None:
    store = import_store()
    async with store.Store(4) as s:
        await s.set("k", b"v")
        assert await s.get("k") == b"v"
    assert [e["id"] async for e in store.events(3, 1)] == [0, 1, 2]

    async def handler(i: int) -> int:
        return i * 2

    assert await store.for_each(handler, 4) == 12


def test_the_readme_counts_the_lines_of_both_versions() -> None:
    script = ROOT / "scripts" / "count_lines.py"
    spec = importlib.util.spec_from_file_location("count_lines", script)
    assert spec is not None and spec.loader is not None
    count_lines = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(count_lines)
    table = count_lines.table()
    assert "| **total** |" in table
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert table in readme, "README's line counts are stale: run python scripts/count_lines.py"
