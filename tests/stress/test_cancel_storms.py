"""Cancellation storms: calls, Python callables awaited by Rust and streams both ways,
cancelled at random points, from other threads (``loop.call_soon_threadsafe(task.cancel)``)
and by closing their loops while they run. Each operation either finishes with its right
result or is cancelled; afterwards every live counter is zero, every spawned task completed
or was cancelled, and nothing was logged or printed."""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from typing import Any, Callable, Coroutine, List

import pytest
from asyncffi import demo
from conftest import LOOPS, RUNTIMES, wait_until_idle
from stress_util import scaled, seed, tallies, unbalanced

pytestmark = pytest.mark.stress

Op = Callable[[], Coroutine[Any, Any, None]]


async def slow_agen(n: int) -> Any:
    for i in range(n):
        await asyncio.sleep(0.0005)
        yield i


def storm_ops(rng: random.Random) -> List[Op]:
    """Operations that take between nothing and a few milliseconds, each checking its result
    if it is not cancelled first."""

    def rt() -> str:
        return rng.choice(RUNTIMES)

    async def sleep() -> None:
        assert await demo.sleep(rng.random() * 0.004, runtime=rt()) is None

    async def echo() -> None:
        assert await demo.echo([1, "two", b"3"], runtime=rt()) == [1, "two", b"3"]

    async def pending() -> None:
        await demo.pending(runtime=rt())

    async def call_python() -> None:
        assert await demo.call_python(asyncio.sleep, rng.random() * 0.004, 7, runtime=rt()) == 7

    async def gather_python() -> None:
        async def slow(i: int) -> int:
            await asyncio.sleep(rng.random() * 0.002)
            return i

        assert await demo.gather_python(slow, 20, runtime=rt()) == list(range(20))

    async def count() -> None:
        got = [x async for x in demo.count(50, delay=0.0001, buffer=8, runtime=rt())]
        assert got == list(range(50))

    async def sum_stream() -> None:
        assert await demo.sum_stream(slow_agen(10), prefetch=2, runtime=rt()) == 45

    async def echo_stream() -> None:
        got = [x async for x in demo.echo_stream(slow_agen(10), buffer=2, runtime=rt())]
        assert got == list(range(10))

    async def take() -> None:
        assert await demo.take(slow_agen(100), 5, runtime=rt()) == list(range(5))

    async def counter() -> None:
        with demo.Counter() as c:
            assert await c.add(5) == 5

    return [
        sleep,
        echo,
        pending,
        call_python,
        gather_python,
        count,
        sum_stream,
        echo_stream,
        take,
        counter,
    ]


async def outcome(op: Op) -> None:
    """Runs ``op``; cancellation is a fine outcome, anything else but success is not."""
    try:
        await op()
    except asyncio.CancelledError:
        pass


def assert_balanced(s: int, before: dict) -> None:
    live = wait_until_idle(10)
    assert not any(live.values()), f"seed={s}: {live}"
    after = tallies()
    assert unbalanced(before, after) == 0, f"seed={s}: {before} -> {after}"


def quiet_asyncio(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not errors, errors[:3]
    err = capfd.readouterr().err
    assert err == "", err[:2000]


@pytest.mark.parametrize("loop_name", list(LOOPS))
def test_cancel_at_random_points(
    loop_name: str,
    wake: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    s = seed()
    print(f"seed={s}")
    rng = random.Random(s)
    before = tallies()

    async def storm() -> None:
        ops = storm_ops(rng)
        tasks = [asyncio.ensure_future(outcome(rng.choice(ops))) for _ in range(200)]
        loop = asyncio.get_running_loop()
        for t in tasks:
            if rng.random() < 0.8:
                loop.call_later(rng.random() * 0.006, t.cancel)
        await asyncio.sleep(0.007)
        for t in tasks:  # `pending` never ends: what is left is cancelled now
            t.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        failures = [
            r for r in results if not isinstance(r, asyncio.CancelledError) and r is not None
        ]
        assert not failures, failures[:3]

    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        loop = LOOPS[loop_name]()
        try:
            for _ in range(scaled(25)):
                loop.run_until_complete(storm())
        finally:
            loop.close()
        del loop
        assert_balanced(s, before)
    quiet_asyncio(caplog, capfd)


@pytest.mark.parametrize("loop_name", list(LOOPS))
def test_cancel_from_other_threads(
    loop_name: str,
    wake: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    s = seed()
    print(f"seed={s}")
    rng = random.Random(s)
    before = tallies()
    loop = LOOPS[loop_name]()
    started: List[asyncio.Task[None]] = []
    stop = threading.Event()

    def canceller(k: int) -> None:
        r = random.Random(s + k)
        while not stop.is_set():
            tasks = started[:]  # a copy: the loop thread empties the list between storms
            if tasks:
                task = r.choice(tasks)
                try:
                    loop.call_soon_threadsafe(task.cancel)
                except RuntimeError:  # the loop closed meanwhile
                    return
            time.sleep(r.random() * 0.0005)

    async def storm() -> None:
        ops = storm_ops(rng)
        tasks = [asyncio.ensure_future(outcome(rng.choice(ops))) for _ in range(100)]
        started[:] = tasks
        await asyncio.sleep(0.008)
        started[:] = []
        for t in tasks:
            t.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        failures = [
            r for r in results if not isinstance(r, asyncio.CancelledError) and r is not None
        ]
        assert not failures, failures[:3]

    threads = [threading.Thread(target=canceller, args=(k,), daemon=True) for k in range(2)]
    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        for t in threads:
            t.start()
        try:
            for _ in range(scaled(25)):
                loop.run_until_complete(storm())
        finally:
            stop.set()
            for t in threads:
                t.join(10)
            loop.close()
        assert_balanced(s, before)
    quiet_asyncio(caplog, capfd)


@pytest.mark.parametrize("how", ["cancel-then-close", "close-with-tasks-pending"])
@pytest.mark.parametrize("loop_name", list(LOOPS))
def test_close_loops_while_work_runs(
    loop_name: str,
    how: str,
    wake: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Loops in several threads start a mix of work, run for a random while, then are closed:
    ``asyncio.run``'s way (cancel every task, let them finish, close), or closed at once with
    the tasks still pending."""
    s = seed()
    print(f"seed={s}")
    before = tallies()
    errors: List[BaseException] = []

    def worker(k: int) -> None:
        rng = random.Random(s + k)
        try:
            for _ in range(scaled(6)):
                loop = LOOPS[loop_name]()
                ops = storm_ops(rng)

                async def run_for(seconds: float, ops: List[Op] = ops) -> None:
                    # Kept by the loop only: closing it with them pending is the point.
                    for _ in range(60):
                        asyncio.ensure_future(outcome(rng.choice(ops)))  # noqa: RUF006
                    await asyncio.sleep(seconds)

                try:
                    loop.run_until_complete(run_for(rng.random() * 0.01))
                    if how == "cancel-then-close":
                        tasks = asyncio.all_tasks(loop)
                        for t in tasks:
                            t.cancel()
                        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
                finally:
                    loop.close()
        except BaseException as e:  # reported below
            errors.append(e)

    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, f"seed={s}: {errors[:3]}"
        assert_balanced(s, before)
    # asyncio itself reports the user's tasks destroyed pending with their loop; what asyncffi
    # runs for them (pumps, calls into Python, RustCall) must report nothing.
    records = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING
        and not (
            r.getMessage().startswith("Task was destroyed but it is pending!")
            and "coro=<outcome()" in r.getMessage()
        )
    ]
    assert not records, records[:3]
    err = capfd.readouterr().err
    assert err == "", err[:2000]
