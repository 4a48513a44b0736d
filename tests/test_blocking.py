"""Calls from synchronous code: ``call.wait()`` and ``for item in stream``, with no event loop."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any, List

import asyncffi
import pytest
from asyncffi import demo
from conftest import live_counters

VALUES: List[Any] = [
    None,
    True,
    -(2**63),
    2.5,
    b"\x00bytes",
    "text é",
    [1, "a", [b"x"]],
    {"k": {"n": 1.0}},
]


def wait_for(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_values_round_trip(runtime: str, value: Any) -> None:
    assert demo.echo(value, runtime=runtime).wait() == value


def test_a_call_that_waits_in_rust(runtime: str) -> None:
    # Pending on its first poll: the outcome arrives through the call's own port.
    assert demo.sleep(0.02, runtime=runtime).wait() is None
    assert demo.tick(0.001, 3).wait() == pytest.approx([0.001, 0.002, 0.003], abs=1)


def test_errors_keep_their_message_and_kind() -> None:
    with pytest.raises(asyncffi.RustError, match="no such thing") as info:
        demo.fail("no such thing", kind="missing").wait()
    assert info.value.kind == "missing"
    with pytest.raises(asyncffi.RustPanic, match="kaboom"):
        demo.panic("kaboom").wait()
    with pytest.raises(asyncffi.RustError, match="does not fit in 64 bits") as info:
        demo.add(2**62, 2**62).wait()
    assert info.value.kind == "overflow"


def test_waiting_again_gives_the_same_outcome() -> None:
    call = demo.add(2, 3)
    assert call.wait() == 5
    assert call.wait() == 5
    failing = demo.fail("once")
    for _ in range(2):
        with pytest.raises(asyncffi.RustError, match="once"):
            failing.wait()


def test_methods_and_objects() -> None:
    counter = demo.Counter()
    assert counter.add(2).wait() == 2
    assert counter.add(3).wait() == 5
    counter.close()
    with pytest.raises(asyncffi.ClosedError):
        counter.add(1).wait()


def test_object_results(testlib: asyncffi.Library) -> None:
    book = testlib.notebook_later(3).wait()
    assert type(book).__name__ == "Notebook"
    assert book.add("a").wait() == 1
    assert testlib.count_notes(book).wait() == 1
    book.close()


def test_timeout_drops_the_rust_future(runtime: str) -> None:
    before = asyncffi.stats()["cancelled"]
    with pytest.raises(TimeoutError):
        demo.pending(runtime=runtime).wait(timeout=0.05)
    assert wait_for(lambda: asyncffi.stats()["cancelled"] == before + 1)
    assert wait_for(lambda: live_counters()["live_tasks"] == 0)


def test_keyboard_interrupt_drops_the_rust_future(runtime: str) -> None:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")
    main = threading.main_thread().ident
    assert main is not None

    def interrupt() -> None:
        # Once the call runs in Rust (and so the main thread waits), Ctrl-C.
        if wait_for(lambda: asyncffi.stats()["live_tasks"] == 1):
            signal.pthread_kill(main, signal.SIGINT)

    before = asyncffi.stats()["cancelled"]
    helper = threading.Thread(target=interrupt)
    helper.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            demo.pending(runtime=runtime).wait(timeout=30)
    finally:
        helper.join()
    assert wait_for(lambda: live_counters()["live_tasks"] == 0)
    assert asyncffi.stats()["cancelled"] == before + 1


def test_ctrl_c_in_a_script_drops_the_future() -> None:
    """A process-wide SIGINT (as the terminal sends it) may land on any thread, Rust's too:
    the wait still notices it within a slice."""
    code = textwrap.dedent(
        """
        import sys, threading, time
        import asyncffi
        from asyncffi import demo

        def report():
            while asyncffi.stats()["live_tasks"] != 1:
                time.sleep(0.005)
            print("waiting", flush=True)

        threading.Thread(target=report, daemon=True).start()
        try:
            demo.sleep(60).wait()
        except KeyboardInterrupt:
            deadline = time.monotonic() + 10
            while asyncffi.stats()["live_tasks"] and time.monotonic() < deadline:
                time.sleep(0.005)
            print("interrupted", asyncffi.stats()["live_tasks"], flush=True)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "waiting"
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert out.strip() == "interrupted 0", err
    assert time.monotonic() - start < 20  # not the 60 s sleep
    assert proc.returncode == 0, err


def test_from_threads_while_other_threads_run(runtime: str) -> None:
    results: List[Any] = [None] * 8
    ticks = []
    done = threading.Event()

    def work(i: int) -> None:
        demo.sleep(0.01, runtime=runtime).wait()
        results[i] = demo.echo([i, "x"], runtime=runtime).wait()

    def python_work() -> None:
        # Pure Python code keeps running while the other threads wait in Rust.
        while not done.is_set():
            ticks.append(1)
            time.sleep(0.001)

    ticker = threading.Thread(target=python_work)
    ticker.start()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    demo.sleep(0.2, runtime=runtime).wait()
    for t in threads:
        t.join()
    done.set()
    ticker.join()
    assert results == [[i, "x"] for i in range(8)]
    assert ticks


def test_inside_a_running_loop_is_refused() -> None:
    async def main() -> None:
        call = demo.add(1, 2)
        with pytest.raises(RuntimeError, match=r"use `await add\(\.\.\.\)`"):
            call.wait()
        assert await call == 3  # refused, not spent
        counter = demo.Counter()
        with pytest.raises(RuntimeError, match=r"await Counter\.add\(\.\.\.\)"):
            counter.add(1).wait()
        with pytest.raises(RuntimeError, match=r"async for item in count\(\.\.\.\)"):
            iter(demo.count(3))
        counter.close()

    asyncio.run(main())


def test_calls_that_lend_python_objects_are_refused() -> None:
    with pytest.raises(TypeError, match="need an event loop"):
        demo.call_python(print).wait()
    with pytest.raises(TypeError, match="need an event loop"):
        iter(demo.echo_stream([1, 2]))


def test_a_call_awaited_on_a_loop_cannot_be_waited() -> None:
    async def start() -> Any:
        call = demo.sleep(0.01)
        task = asyncio.ensure_future(call)
        await task
        return call

    call = asyncio.run(start())
    with pytest.raises(RuntimeError, match="await it"):
        call.wait()


def test_stream_iterator(runtime: str) -> None:
    assert list(demo.count(5, runtime=runtime)) == [0, 1, 2, 3, 4]
    # Past the buffer: credit goes back as items are taken.
    assert sum(demo.count(3000, buffer=16, runtime=runtime)) == sum(range(3000))
    assert list(demo.count(3, delay=0.005, runtime=runtime)) == [0, 1, 2]


def test_stream_error_after_its_items() -> None:
    seen = []
    with pytest.raises(asyncffi.RustError, match="went wrong"):
        for item in demo.fail_after(3, "went wrong"):
            seen.append(item)
    assert seen == [0, 1, 2]


def test_stream_of_objects(testlib: asyncffi.Library) -> None:
    books = list(testlib.notebooks(3))
    assert [type(b).__name__ for b in books] == ["Notebook"] * 3
    for book in books:
        book.close()


def test_breaking_out_of_a_stream_drops_it(runtime: str) -> None:
    before = asyncffi.stats()["cancelled"]
    for item in demo.count(10**9, runtime=runtime):
        if item == 10:
            break

    def dropped() -> bool:
        if sys.implementation.name == "pypy":
            gc.collect()  # there the abandoned iterator is finalized when collected, not at once
        return live_counters()["live_tasks"] == 0

    assert wait_for(dropped)
    assert asyncffi.stats()["cancelled"] == before + 1
    # Explicitly, anywhere (PyPy collects later):
    with contextlib.closing(iter(demo.count(10**9, runtime=runtime))) as items:
        assert next(items) == 0
    assert wait_for(lambda: live_counters()["live_tasks"] == 0)


def test_a_stream_is_iterated_once() -> None:
    stream = demo.count(2)
    assert list(stream) == [0, 1]
    with pytest.raises(RuntimeError, match="iterated already"):
        iter(stream)
