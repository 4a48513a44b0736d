"""Several asyncffi libraries in one process: the built-ins (``asyncffi.demo``) and the test
library (``rust/testlib``), each with its own copy of the Rust core, used side by side.

Each library's ids, ports, errors, counters and shutdown are its own: an object or a raw id of
one is refused by the other (``TypeError`` from Python, ``ERR_VALUE`` "belongs to another
library" from C), and shutting one down leaves the other running.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
from typing import Any, AsyncIterator, Dict, List, Optional

import asyncffi
import pytest
from asyncffi import demo
from asyncffi._loader import ABI_VERSION, abi, ffi
from asyncffi._runtime import runtime_id
from asyncffi.pytest_plugin import assert_clean_exit
from conftest import LOOPS, TESTLIB_HEADER, find_testlib, run_python, wait_for_stat

ERR_VALUE = abi.AFFI_STATUS_ERR_VALUE

# --- the test library's functions, as a package would wrap them --------------------------


def scale(
    lib: asyncffi.Library, x: int, factor: int, seconds: float = 0.0, rt: str = "tokio"
) -> Any:
    return lib.call("testlib_scale", x, factor, seconds, runtime_id(rt))


def accumulator(lib: asyncffi.Library, start: int = 0) -> asyncffi.RustObject:
    return lib.adopt(lib.function("testlib_accumulator_new")(start))


def accumulate(
    lib: asyncffi.Library, acc: Any, x: int, seconds: float = 0.0, rt: str = "tokio"
) -> Any:
    return lib.call("testlib_accumulator_add", acc, x, seconds, runtime_id(rt))


def squares(
    lib: asyncffi.Library,
    n: int,
    seconds: float = 0.0,
    rt: str = "tokio",
    buffer: Optional[int] = None,
) -> Any:
    return lib.stream("testlib_squares", n, seconds, runtime_id(rt), buffer=buffer)


def apply(lib: asyncffi.Library, fn: Any, x: int, rt: str = "tokio") -> Any:
    return lib.call("testlib_apply", asyncffi.PyCallableArg(fn), x, runtime_id(rt))


async def collect(stream: AsyncIterator[Any]) -> List[Any]:
    return [item async for item in stream]


async def double(x: int) -> int:
    await asyncio.sleep(0)
    return x * 2


# --- side by side --------------------------------------------------------------------------


async def test_both_libraries_serve_one_loop_concurrently(
    testlib: asyncffi.Library, runtime: str
) -> None:
    acc = accumulator(testlib, 10)
    counter = demo.Counter()
    results = await asyncio.wait_for(
        asyncio.gather(
            demo.add(1, 2),
            demo.echo("x", runtime=runtime),
            demo.sleep(0.01, runtime=runtime),
            scale(testlib, 6, 7, 0.01, runtime),
            accumulate(testlib, acc, 5, 0.0, runtime),
            counter.add(4),
            apply(testlib, double, 20, runtime),
            demo.call_python(double, 3, runtime=runtime),
            collect(squares(testlib, 5, 0.001, runtime)),
            collect(demo.count(3, runtime=runtime)),
        ),
        10,
    )
    assert results == [3, "x", None, 42, 15, 4, 41, 6, [0, 1, 4, 9, 16], [0, 1, 2]]
    # One port per library on this loop, each in its own library.
    native_port, test_port = demo.library.current_port(), testlib.current_port()
    assert native_port is not test_port
    assert (native_port.library, test_port.library) == (demo.library, testlib)
    # Many calls in flight on both at once, interleaved.
    calls = [c for i in range(500) for c in (demo.add(i, 1), scale(testlib, i, 3, 0.0, runtime))]
    out = await asyncio.wait_for(asyncio.gather(*calls), 20)
    assert out == [v for i in range(500) for v in (i + 1, 3 * i)]
    acc.close()
    counter.close()


def test_two_loops_in_two_threads_use_both_libraries(testlib: asyncffi.Library) -> None:
    async def work(k: int) -> List[Any]:
        acc = accumulator(testlib)
        calls = []
        for i in range(300):
            calls += [demo.add(i, k), scale(testlib, i, k, 0.0005), accumulate(testlib, acc, 1)]
        out = await asyncio.wait_for(asyncio.gather(*calls), 30)
        out.append(await collect(squares(testlib, 4, 0.0, buffer=1)))
        acc.close()
        return out

    results: Dict[int, List[Any]] = {}
    errors: List[BaseException] = []

    def run(k: int, new_loop: Any) -> None:
        loop = new_loop()
        try:
            results[k] = loop.run_until_complete(work(k))
        except BaseException as exc:
            errors.append(exc)
        finally:
            loop.close()

    kinds = list(LOOPS.values())
    threads = [threading.Thread(target=run, args=(k, kinds[k % len(kinds)])) for k in (2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    for k in (2, 3):
        out = results[k]
        assert out[0:900:3] == [i + k for i in range(300)]
        assert out[1:900:3] == [i * k for i in range(300)]
        assert sorted(out[2:900:3]) == list(range(1, 301))
        assert out[900] == [0, 1, 4, 9]


# --- ids that know their library -----------------------------------------------------------


async def test_an_object_passed_to_another_library_is_refused(testlib: asyncffi.Library) -> None:
    counter = demo.Counter()
    acc = accumulator(testlib)
    with pytest.raises(
        TypeError,
        match=r"Counter belongs to the library asyncffi\._native, not to asyncffi_testlib",
    ):
        testlib.call("testlib_accumulator_add", counter, 1, 0.0, 0)
    with pytest.raises(
        TypeError,
        match=r"RustObject belongs to the library asyncffi_testlib, not to asyncffi\._native",
    ):
        demo.library.call("asyncffi_native_Counter_add", acc, 1)
    with pytest.raises(TypeError, match="belongs to the library asyncffi_testlib"):
        acc.handle_for(demo.library)
    # Both objects are untouched, and work with their own library.
    assert await accumulate(testlib, acc, 2) == 2
    assert await counter.add(3) == 3
    assert await demo.library.call("asyncffi_native_Counter_add", counter, 1) == 4
    acc.close()
    counter.close()


async def test_raw_ids_of_one_library_are_refused_by_the_other(testlib: asyncffi.Library) -> None:
    native, test = demo.library.lib, testlib.lib
    acc = accumulator(testlib)
    counter = demo.Counter()
    # Object handles, both ways.
    assert native.affi_object_free(acc.handle) == ERR_VALUE
    assert "object id" in demo.library.last_error()
    assert "belongs to another library" in demo.library.last_error()
    assert test.affi_object_free(counter.handle) == ERR_VALUE
    assert "belongs to another library" in testlib.last_error()
    port = testlib.current_port()
    add = testlib.function("testlib_accumulator_add")
    assert add(port.id, next(port.tokens), counter.handle, 1, 0.0, 0) == ERR_VALUE
    assert "belongs to another library" in testlib.last_error()
    # Port ids.
    buf = ffi.new("AffiCompletion[]", 4)
    assert native.affi_port_drain(port.id, buf, 4) == ERR_VALUE
    assert "port id" in demo.library.last_error()
    assert test.affi_port_close(demo.library.current_port().id) == ERR_VALUE
    # Task ids (a Rust stream is a task too).
    call = scale(testlib, 1, 1, 10.0)
    call.get_loop()  # starts it, as a future
    assert native.affi_task_cancel(call._task) == ERR_VALUE
    assert "task id" in demo.library.last_error()
    pending = demo.pending()
    pending.get_loop()
    assert test.affi_task_cancel(pending._task) == ERR_VALUE
    assert test.affi_stream_grant(pending._task, 1) == ERR_VALUE
    # Nothing was acted on: each library's own ids still work.
    assert not call.done() and not pending.done()
    call.cancel()
    pending.cancel()
    assert await accumulate(testlib, acc, 1) == 1
    assert await counter.add(1) == 1
    acc.close()
    counter.close()


# --- counters ------------------------------------------------------------------------------


async def test_each_library_counts_its_own_work(testlib: asyncffi.Library) -> None:
    native_before, test_before = demo.library.stats(), testlib.stats()
    calls = [asyncio.ensure_future(scale(testlib, i, 2, 0.05)) for i in range(50)]
    await asyncio.sleep(0.01)
    busy = testlib.stats()
    assert busy["live_tasks"] == 50
    assert demo.library.stats()["live_tasks"] == 0
    assert asyncffi.stats()["live_tasks"] == 50
    assert await asyncio.wait_for(asyncio.gather(*calls), 10) == [2 * i for i in range(50)]
    native_after, test_after = demo.library.stats(), testlib.stats()
    assert test_after["spawned"] - test_before["spawned"] == 50
    assert test_after["completed"] - test_before["completed"] == 50
    assert native_after["spawned"] == native_before["spawned"]
    # The aggregate is the sum over every loaded library (the last task's bookkeeping may end
    # just after its outcome arrived).
    assert await wait_for_stat("live_tasks", 0) == 0
    libraries = asyncffi.libraries()
    assert demo.library in libraries and testlib in libraries
    per_library = [lib.stats() for lib in libraries]
    total = asyncffi.stats()
    for name in ("live_tasks", "live_values", "live_objects", "live_callables"):
        assert total[name] == sum(s[name] for s in per_library) == 0


# --- loading -------------------------------------------------------------------------------


def _compile(tmp_path: Any, name: str, source: str) -> str:
    gcc = shutil.which("gcc") or shutil.which("cc")
    assert gcc is not None, "these tests compile a tiny C library: install gcc"
    src = tmp_path / f"{name}.c"
    src.write_text(source)
    out = tmp_path / f"lib{name}.so"
    subprocess.run([gcc, "-shared", "-fPIC", "-o", str(out), str(src)], check=True)
    return str(out)


def test_a_library_of_another_abi_version_is_refused(tmp_path: Any) -> None:
    other = ABI_VERSION + 7
    path = _compile(
        tmp_path, "otherabi", f"unsigned int affi_abi_version(void) {{ return {other}; }}\n"
    )
    with pytest.raises(
        ImportError,
        match=rf"speaks asyncffi C ABI version {other}, this asyncffi package speaks version "
        rf"{ABI_VERSION}",
    ):
        asyncffi.load(path)
    assert all(lib.path != path for lib in asyncffi.libraries())


def test_a_library_that_is_not_asyncffis_is_refused(tmp_path: Any) -> None:
    path = _compile(tmp_path, "plain", "int plain(void) { return 1; }\n")
    with pytest.raises(ImportError, match="is not an asyncffi library"):
        asyncffi.load(path)
    with pytest.raises(ImportError, match="cannot open"):
        asyncffi.load(tmp_path / "missing.so")


def test_loading_a_library_again_gives_the_same_library(testlib: asyncffi.Library) -> None:
    assert asyncffi.load(find_testlib()) is testlib
    assert asyncffi.load(find_testlib(), header=TESTLIB_HEADER) is testlib
    with pytest.raises(ValueError, match="other declarations"):
        asyncffi.load(find_testlib(), cdef="int64_t testlib_accumulator_new(int64_t start);")
    assert testlib.name == "asyncffi_testlib"
    assert demo.library.name == "asyncffi._native"
    assert "asyncffi_testlib" in repr(testlib)
    with pytest.raises(AttributeError, match="has no function 'nope'"):
        testlib.function("nope")


async def test_a_packaged_copy_of_a_cdylib_is_a_library_of_its_own(
    testlib: asyncffi.Library, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # maturin's layout for cffi bindings with module-name = "mypkg._mylib".
    package = tmp_path / "mypkg"
    (package / "_mylib").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    shutil.copy(find_testlib(), package / "_mylib" / "lib_mylib.so")
    monkeypatch.syspath_prepend(str(tmp_path))
    copy = asyncffi.load_packaged("mypkg", "_mylib", header=TESTLIB_HEADER)
    assert copy.name == "mypkg._mylib"
    assert asyncffi.load_packaged(str(package / "__init__.py"), "_mylib") is copy
    # Its own copy of the core: its own objects and ids, refused by the original.
    assert copy is not testlib
    acc = accumulator(copy, 1)
    assert await accumulate(copy, acc, 2) == 3
    assert await scale(copy, 4, 5) == 20
    with pytest.raises(TypeError, match=r"belongs to the library mypkg\._mylib"):
        accumulate(testlib, acc, 1)
    assert testlib.lib.affi_object_free(acc.handle) == ERR_VALUE
    acc.close()
    with pytest.raises(ImportError, match="lib_other"):
        asyncffi.load_packaged("mypkg", "_other")


# --- shutdown ------------------------------------------------------------------------------

EXIT_SCRIPT = """
import asyncio, sys, threading, time
import asyncffi
from asyncffi import demo
from asyncffi._runtime import runtime_id

testlib = asyncffi.load({path!r}, header={header!r})
RT = {runtime!r}

def new_loop():
    if {loop!r} == "uvloop":
        import uvloop
        return uvloop.new_event_loop()
    return asyncio.new_event_loop()

async def slow(x):
    await asyncio.sleep(60)
    return x

async def busy(ready):
    acc = testlib.adopt(testlib.function("testlib_accumulator_new")(0))
    work = asyncio.gather(  # futures, no Task asyncio would report
        testlib.call("testlib_scale", 1, 2, 60.0, runtime_id(RT)),
        testlib.call("testlib_accumulator_add", acc, 1, 60.0, runtime_id(RT)),
        testlib.call("testlib_apply", asyncffi.PyCallableArg(slow), 1, runtime_id(RT)),
        demo.sleep(60, runtime=RT),
        demo.pending(runtime=RT),
        demo.call_python(slow, 1, runtime=RT),
        *[testlib.call("testlib_scale", i, 2, 0.001 * (i % 9), runtime_id(RT)) for i in range(500)],
        *[demo.sleep(0.001 * (i % 50), runtime=RT) for i in range(500)],
    )
    items = testlib.stream("testlib_squares", 10**9, 0.0, runtime_id(RT), buffer=8)
    await items.__anext__()  # a Rust stream, half read
    ready.set()
    await asyncio.sleep(0.2)
    return work

def in_daemon(ready):
    loop = new_loop()
    loop.run_until_complete(busy(ready))
    loop.run_forever()

daemon_ready = threading.Event()
threading.Thread(target=in_daemon, args=(daemon_ready,), daemon=True).start()
main_ready = threading.Event()
loop = new_loop()
pending = loop.run_until_complete(busy(main_ready))  # left unclosed, with work in flight
assert daemon_ready.wait(10)
print("exiting", asyncffi.stats()["live_tasks"] > 0, flush=True)
"""


@pytest.mark.parametrize("loop", list(LOOPS))
@pytest.mark.parametrize("rt", ["tokio", "async-std"])
def test_exit_with_both_libraries_busy(loop: str, rt: str) -> None:
    code = EXIT_SCRIPT.format(
        path=find_testlib(), header=str(TESTLIB_HEADER), runtime=rt, loop=loop
    )
    proc = run_python(code, timeout=60)
    assert_clean_exit(proc)
    assert proc.stdout.split() == ["exiting", "True"]


SHUTDOWN_SCRIPT = """
import asyncio
import asyncffi
from asyncffi import demo
from asyncffi._runtime import runtime_id

testlib = asyncffi.load({path!r}, header={header!r})
RT = {runtime!r}

async def main():
    acc = testlib.adopt(testlib.function("testlib_accumulator_new")(0))
    theirs = [
        asyncio.ensure_future(testlib.call("testlib_scale", 1, 2, 30.0, runtime_id(RT))),
        asyncio.ensure_future(
            testlib.call("testlib_accumulator_add", acc, 1, 30.0, runtime_id(RT))
        ),
    ]
    ours = [asyncio.ensure_future(demo.sleep(0.3, runtime=RT)) for _ in range(50)]
    stream = demo.count(200, delay=0.001, runtime=RT)
    first = await stream.__anext__()
    await asyncio.sleep(0.05)
    testlib.shutdown(timeout=1.0)
    for t in theirs:
        try:
            await asyncio.wait_for(t, 5)
        except asyncffi.ShutDownError as exc:
            assert "asyncffi_testlib has shut down" in str(exc), exc
        else:
            raise AssertionError("a call of the library shut down finished")
    try:
        await testlib.call("testlib_scale", 1, 2, 0.0, runtime_id(RT))
    except asyncffi.ShutDownError:
        pass
    else:
        raise AssertionError("a call after shutdown started")
    # The other library never noticed.
    assert await asyncio.wait_for(asyncio.gather(*ours), 10) == [None] * 50
    assert [first] + [x async for x in stream] == list(range(200))
    assert await demo.add(2, 3) == 5
    assert await demo.echo("still here", runtime=RT) == "still here"
    acc.close()
    # A task's bookkeeping may end just after its outcome arrived: wait for it a little.
    for _ in range(500):
        live = {{
            (lib.name, k): v
            for lib in (testlib, demo.library)
            for k, v in lib.stats().items()
            if k.startswith("live_") and k != "live_ports" and v
        }}
        if not live:
            break
        await asyncio.sleep(0.01)
    assert not live, live
    print("ok")

asyncio.run(main())
"""


@pytest.mark.parametrize("rt", ["tokio", "async-std"])
def test_shutting_one_library_down_leaves_the_other_running(rt: str) -> None:
    code = SHUTDOWN_SCRIPT.format(path=find_testlib(), header=str(TESTLIB_HEADER), runtime=rt)
    proc = run_python(code, timeout=60)
    assert_clean_exit(proc)
    assert proc.stdout.split() == ["ok"]
