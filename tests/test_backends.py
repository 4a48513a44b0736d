"""Trio and anyio: what differs from asyncio, anyio code on both of its backends, trio imported
only when used, and exit from ``trio.run`` with work in flight. (The call, cancellation,
stream and callable tests run on trio too: see ``@every_backend`` in conftest.)"""

from __future__ import annotations

import sys
from typing import Any, List

import anyio
import asyncffi
import pytest
import trio
from asyncffi import _port, demo
from asyncffi.pytest_plugin import assert_clean_exit
from conftest import run_python, sleep, task, wait_for_stat


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_anyio_code_runs_on_both_of_its_backends(backend: str) -> None:
    async def double(x: int) -> int:
        await anyio.sleep(0.01)
        return 2 * x

    async def numbers() -> Any:
        for i in range(100):
            yield i
            await anyio.sleep(0)

    async def main() -> List[Any]:
        out: List[Any] = [await demo.add(1, 2), await demo.call_python(double, 21)]
        async with anyio.create_task_group() as tg:
            for _ in range(100):
                tg.start_soon(task(demo.sleep, 0.01))
        out.append(await demo.sum_stream(numbers()))
        out.append([x async for x in demo.count(5)])
        with anyio.move_on_after(0.05) as scope:
            await demo.pending()
        out.append(scope.cancelled_caught)
        out.append(await wait_for_stat("live_tasks", 0))
        return out

    assert anyio.run(main, backend=backend) == [3, 42, 4950, [0, 1, 2, 3, 4], True, 0]


def test_trio_runs_a_call_directly() -> None:
    assert trio.run(demo.add, 20, 22) == 42  # as asyncio.run(demo.add(20, 22))
    assert trio.run(demo.sleep, 0.01) is None


def test_under_trio_a_call_is_awaited_not_used_as_a_future() -> None:
    async def main() -> None:
        with pytest.raises(RuntimeError, match="not an asyncio future under trio"):
            demo.add(1, 2).add_done_callback(lambda _: None)
        call = demo.sleep(0.01)
        assert await call is None
        assert await call is None  # awaited again: the same outcome, nothing run again
        assert "done" in repr(call)

    trio.run(main)


def test_under_trio_a_call_has_one_awaiter_and_cancel_wakes_it() -> None:
    async def main() -> None:
        call = demo.pending()
        errors: List[BaseException] = []

        async def wait() -> None:
            try:
                await call
            except BaseException as exc:
                errors.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(wait)
            await wait_for_stat("live_tasks", 1)
            assert "running as task" in repr(call)
            with pytest.raises(RuntimeError, match="awaited by another trio task"):
                await call
            assert call.cancel()
        assert [type(e) for e in errors] == [asyncffi.ClosedError]
        assert await wait_for_stat("live_tasks", 0) == 0
        with pytest.raises(asyncffi.ClosedError):
            await call  # awaited again: the same outcome

    trio.run(main)


def test_a_call_cancelled_by_trio_is_dropped_in_rust() -> None:
    async def main() -> None:
        before = asyncffi.stats()
        call = demo.sleep(30)
        with trio.move_on_after(0.05):
            await call
        assert await wait_for_stat("live_tasks", 0, timeout=1.0) == 0
        after = asyncffi.stats()
        assert after["cancelled"] == before["cancelled"] + 1
        assert after["completed"] == before["completed"]
        with pytest.raises(asyncffi.ClosedError, match="cancelled"):
            await call  # the call's outcome is its cancellation, never trio's Cancelled again

    trio.run(main)


def test_the_fd_wake_waits_on_the_eventfd_under_trio(wake: str) -> None:
    async def main() -> None:
        assert await demo.sleep(0.01) is None
        port = demo.library.current_port(_port.trio_host())
        assert port.wake == wake
        assert (port.fd >= 0) == (wake == "fd")
        assert [x async for x in demo.count(1000)] == list(range(1000))

    trio.run(main)


def test_the_end_of_the_run_closes_its_port_and_cancels_its_work() -> None:
    started: List[Any] = []

    async def main() -> None:
        items = demo.count(10**9, delay=0.001)
        started.append(await items.__anext__())  # a stream left open
        trio.lowlevel.spawn_system_task(demo.sleep, 30)  # and a call the run never waits for
        await sleep(0.05)
        assert asyncffi.stats()["live_tasks"] == 2

    trio.run(main)
    assert started == [0]
    # The port closed with the run (the no_leaks fixture checks Rust).
    assert not demo.library.open_ports()


def test_asyncio_alone_never_imports_trio() -> None:
    proc = run_python(
        """
        import asyncio, sys
        import asyncffi
        from asyncffi import demo

        async def main():
            await demo.sleep(0.01)
            async def handler(x):
                return x
            assert await demo.call_python(handler, 1) == 1
            assert [x async for x in demo.count(3)] == [0, 1, 2]
        asyncio.run(main())
        print("trio" in sys.modules, "asyncffi._trio" in sys.modules)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "False False\n"


EXIT_SCRIPT = """
import signal, sys
import trio
import asyncffi
from asyncffi import demo
asyncffi.configure(wake={wake!r})

async def forever():
    i = 0
    while True:
        yield i
        i += 1
        if i % 100 == 0:
            await trio.sleep(0)

async def slow(x):
    async with trio.open_nursery() as nursery:   # cancelled at the end: a group of Cancelled
        nursery.start_soon(trio.sleep, 100)
        await trio.sleep(100)

async def main():
    items = demo.count(10**12)
    await items.__anext__()                                   # a Rust stream, half read
    async with trio.open_nursery() as nursery:
        for _ in range(1000):
            nursery.start_soon(demo.sleep, 100)               # Rust calls in flight
        nursery.start_soon(demo.sum_stream, forever())        # Rust reading Python forever
        nursery.start_soon(demo.gather_python, slow, 100)     # Rust awaiting Python
        for _ in range(1000):                                 # until all of them are in flight
            if asyncffi.stats()["live_calls"] == 100:
                break
            await trio.sleep(0.01)
        print(asyncffi.stats()["live_calls"], flush=True)
        {ending}

def interrupted(exc):  # a KeyboardInterrupt, maybe in (nested) exception groups
    inner = getattr(exc, "exceptions", None)
    return isinstance(exc, KeyboardInterrupt) or bool(inner) and all(map(interrupted, inner))

try:
    trio.run(main)
except BaseException as exc:
    if not interrupted(exc):
        raise
"""


@pytest.mark.parametrize(
    "ending",
    ["nursery.cancel_scope.cancel()", "raise KeyboardInterrupt", "signal.raise_signal(2)"],
    ids=["returns", "interrupted", "sigint"],
)
def test_exit_from_trio_with_work_in_flight_prints_nothing(wake: str, ending: str) -> None:
    if ending.startswith("signal") and sys.platform == "win32":
        pytest.skip("signal.raise_signal(SIGINT) is not delivered as KeyboardInterrupt there")
    proc = run_python(EXIT_SCRIPT.format(wake=wake, ending=ending))
    assert_clean_exit(proc)
    assert proc.stdout == "100\n"


INTERRUPTING_CALLABLE_SCRIPT = """
import gc, time
import trio
import asyncffi
from asyncffi import demo

def plain(x):
    raise KeyboardInterrupt

async def coroutine(x):
    await trio.sleep(0.01)
    raise KeyboardInterrupt

async def main():
    async with trio.open_nursery() as nursery:
        for _ in range(100):
            nursery.start_soon(demo.sleep, 100)
        await demo.call_python({fn}, 1)

def leaves(exc):
    inner = getattr(exc, "exceptions", None)
    return [leaf for e in inner for leaf in leaves(e)] if inner else [exc]

def interrupted(exc):  # the interrupt, maybe with the call it cut short (whichever came first)
    kinds = set(map(type, leaves(exc)))
    return KeyboardInterrupt in kinds and kinds <= set((KeyboardInterrupt, asyncffi.ClosedError))

try:
    trio.run(main)
except BaseException as exc:
    print(type(exc).__name__ if not interrupted(exc) else "KeyboardInterrupt")
gc.collect()
time.sleep(0.2)
print({{k: v for k, v in asyncffi.stats().items() if k.startswith("live_") and v}})
"""


@pytest.mark.parametrize("fn", ["plain", "coroutine"])
def test_a_keyboard_interrupt_from_a_callable_ends_the_run_as_ctrl_c_would(fn: str) -> None:
    proc = run_python(INTERRUPTING_CALLABLE_SCRIPT.format(fn=fn))
    assert_clean_exit(proc)
    assert proc.stdout == "KeyboardInterrupt\n{}\n"
