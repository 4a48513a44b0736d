"""A library's own runtimes: the test library (rust/testlib) hands asyncffi its own tokio
runtime (a builder: two workers named ``testlib-tokio``) and registers a smol executor as
``smol`` (``asyncffi::register_runtime!``). Values, errors, panics and cancellation behave as on
the built-in runtimes, the futures really run on the library's threads, the other libraries
keep theirs, and exit with work in flight is clean."""

from __future__ import annotations

import asyncio
from typing import Tuple

import asyncffi
import pytest
from asyncffi._runtime import RUNTIMES, library_runtimes
from conftest import LOOPS, TESTLIB_HEADER, find_testlib, run_clean

VALUES = [
    None,
    True,
    -(2**63),
    2.5,
    b"\x00bytes",
    "text \u00e9",
    [1, "two", [3.0]],
    {"k": [1, None]},
]


def guards(testlib: asyncffi.Library) -> Tuple[int, int]:
    """``(alive, dropped)``: the test library's guards held by running futures, and dropped."""
    alive, dropped = testlib.guards()
    return int(alive), int(dropped)


async def until_guards(testlib: asyncffi.Library, alive: int, timeout: float = 10.0) -> None:
    """Waits (on the loop) until exactly ``alive`` guards are held."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while guards(testlib)[0] != alive:
        assert loop.time() < deadline, f"guards alive: {guards(testlib)[0]}, expected {alive}"
        await asyncio.sleep(0.005)


async def test_values_round_trip_on_smol(testlib: asyncffi.Library) -> None:
    for value in VALUES:
        assert await testlib.smol_echo(value) == value
    assert await asyncio.gather(*(testlib.smol_echo(i) for i in range(200))) == list(range(200))


async def test_errors_and_panics_on_smol_become_exceptions(testlib: asyncffi.Library) -> None:
    with pytest.raises(asyncffi.RustError, match="no such thing") as info:
        await testlib.smol_fail("no such thing")
    assert info.value.kind == "SmolError"
    with pytest.raises(asyncffi.RustPanic, match="smol went wrong"):
        await testlib.smol_panic("smol went wrong")
    assert await testlib.smol_echo("still works") == "still works"


async def test_futures_run_on_the_librarys_own_threads(testlib: asyncffi.Library) -> None:
    assert await testlib.smol_thread(0.001) == "testlib-smol"
    assert await testlib.tokio_thread() == "testlib-tokio"
    # The caller's choice of runtime reaches the registered one too.
    assert await testlib.where_run(0.001, runtime="smol") == "smol:x"
    assert await testlib.where_run(0.001, runtime="tokio", label="t") == "tokio:t"


@pytest.mark.parametrize("fn", ["smol_hold", "tokio_hold"])
async def test_cancellation_drops_the_future_on_its_runtime(
    testlib: asyncffi.Library, fn: str
) -> None:
    alive, dropped = guards(testlib)
    call = asyncio.ensure_future(getattr(testlib, fn)(7, 60.0))
    await until_guards(testlib, alive + 1)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await until_guards(testlib, alive)
    assert guards(testlib)[1] == dropped + 1
    # A call that finishes drops its guard too, and returns its value.
    assert await getattr(testlib, fn)(8, 0.001) == 8
    assert guards(testlib) == (alive, dropped + 2)


def test_runtimes_are_listed_per_library(testlib: asyncffi.Library) -> None:
    own = library_runtimes(testlib.lib)
    assert own["smol"] >= 16
    assert testlib.runtimes == own
    assert {k: v for k, v in own.items() if v < 16} == RUNTIMES
    assert "smol" not in RUNTIMES  # the built-ins have no smol


async def test_unknown_runtime_names_the_registered_ones(testlib: asyncffi.Library) -> None:
    with pytest.raises(ValueError, match="'smol'"):
        await testlib.where_run(0.001, runtime="trio")


CHECK_SCRIPT = """
import asyncio, os
import asyncffi
from asyncffi import demo

def threads():
    names = []
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{{tid}}/comm") as f:
                names.append(f.read().strip())
        except FileNotFoundError:
            pass
    return names

asyncffi.configure(worker_threads=1)  # the built-ins' tokio; the test library keeps its own
testlib = asyncffi.load({path!r}, header={header!r})

async def main():
    assert await testlib.tokio_thread() == "testlib-tokio"
    assert await testlib.smol_thread(0.001) == "testlib-smol"
    await demo.sleep(0.001)
names = threads()
asyncio.run(main())
names = threads()
print(names.count("testlib-tokio"), names.count("testlib-smol"), names.count("asyncffi-tokio"))
testlib.shutdown()
names = threads()
print(names.count("testlib-tokio"), names.count("testlib-smol"), names.count("asyncffi-tokio"))
"""


def test_each_library_keeps_its_runtimes_and_shutdown_stops_them() -> None:
    proc = run_clean(CHECK_SCRIPT.format(path=find_testlib(), header=str(TESTLIB_HEADER)))
    running, stopped = proc.stdout.split("\n")[:2]
    # The library's two tokio workers and two smol threads, the built-ins' one worker.
    assert running == "2 2 1"
    # Its shutdown stops its own (the built-ins run on).
    assert stopped == "0 0 1"


EXIT_SCRIPT = """
import asyncio
import asyncffi

testlib = asyncffi.load({path!r}, header={header!r})

def new_loop():
    if {loop!r} == "uvloop":
        import uvloop
        return uvloop.new_event_loop()
    return asyncio.new_event_loop()

async def busy():
    work = asyncio.gather(
        *[testlib.smol_hold(i, 60.0) for i in range(50)],
        *[testlib.tokio_hold(i, 60.0) for i in range(50)],
        *[testlib.smol_hold(i, 0.001 * (i % 9)) for i in range(300)],
        *[testlib.where_run(0.001 * (i % 7), runtime="smol") for i in range(300)],
    )
    while testlib.guards()[0] < 100:
        await asyncio.sleep(0.01)
    return work

loop = new_loop()
pending = loop.run_until_complete(busy())  # left unclosed, with work in flight
print("exiting", testlib.guards()[0] >= 100, flush=True)
"""


@pytest.mark.parametrize("loop", list(LOOPS))
def test_exit_with_work_in_flight_on_the_librarys_runtimes_is_clean(loop: str) -> None:
    code = EXIT_SCRIPT.format(path=find_testlib(), header=str(TESTLIB_HEADER), loop=loop)
    proc = run_clean(code)
    assert proc.stdout == "exiting True\n"
