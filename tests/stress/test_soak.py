"""Leak soak: rounds of randomly mixed operations (calls, cancellations, streams both ways,
objects, Python callables, errors and panics) on every runtime, on asyncio and uvloop, with
both wake strategies. Every operation checks its own outcome; after the soak every live
counter is back at zero, every spawned task completed or was cancelled, and RSS grew by less
than ``RSS_BOUND`` after a warm-up round."""

from __future__ import annotations

import asyncio
import gc
import random
from typing import Any, Awaitable, Callable, List

import asyncffi
import pytest
from asyncffi import demo
from conftest import LOOPS, RUNTIMES, wait_until_idle
from stress_util import rss_bytes, scaled, seed, tallies, unbalanced

pytestmark = pytest.mark.stress

#: Operations per round, and rounds per (loop, wake) pair at scale 1.
OPS_PER_ROUND = 60
ROUNDS = 400
#: RSS growth allowed over a soak, after its warm-up round (allocator noise included).
RSS_BOUND = 16 * 1024 * 1024

VALUES: List[Any] = [
    None,
    True,
    -(2**63),
    2**63 - 1,
    0.5,
    -0.0,
    b"\x00" * 300,
    "é" * 200,
    [1, "x", [None, {"k": b"v"}]],
    {"a": list(range(50)), "b": {"c": 1.5}},
]


class Expected(Exception):
    """Raised by a Python callable; must come back as itself."""


async def identity(x: Any) -> Any:
    await asyncio.sleep(0)
    return x


async def raiser(x: Any) -> Any:
    raise Expected(x)


async def agen(n: int, closed: List[bool]) -> Any:
    try:
        for i in range(n):
            yield i
            if i % 7 == 0:
                await asyncio.sleep(0)
    finally:
        closed.append(True)


def operations(rng: random.Random) -> List[Callable[[], Awaitable[None]]]:
    """Every kind of operation, each checking its own outcome (AssertionError if wrong)."""

    def rt() -> str:
        return rng.choice(RUNTIMES)

    async def echo() -> None:
        v = rng.choice(VALUES)
        assert await demo.echo(v, runtime=rt()) == v

    async def overflow() -> None:
        try:
            await demo.add(2**63 - 1, 1)
        except asyncffi.RustError as e:
            assert e.kind == "overflow"
        else:
            raise AssertionError("no overflow")

    async def fail() -> None:
        try:
            await demo.fail("soak", kind="k")
        except asyncffi.RustError as e:
            assert (str(e), e.kind) == ("soak", "k")
        else:
            raise AssertionError("no error")

    async def panic() -> None:
        try:
            await demo.panic("soak panic")
        except asyncffi.RustPanic as e:
            assert str(e) == "soak panic"
        else:
            raise AssertionError("no panic")

    async def cancel_sleep() -> None:
        task = asyncio.ensure_future(demo.sleep(10, runtime=rt()))
        for _ in range(rng.randrange(3)):
            await asyncio.sleep(0)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        else:
            raise AssertionError("not cancelled")

    async def timeout_pending() -> None:
        try:
            await asyncio.wait_for(demo.pending(runtime=rt()), rng.choice([0, 0.001, 0.005]))
        except asyncio.TimeoutError:
            pass

    async def sleep() -> None:
        assert await demo.sleep(rng.choice([0, 0.001]), runtime=rt()) is None

    async def count_all() -> None:
        n = rng.randrange(200)
        got = [x async for x in demo.count(n, buffer=rng.choice([None, 1, 16]), runtime=rt())]
        assert got == list(range(n))

    async def count_partial() -> None:
        stream = demo.count(10_000, runtime=rt())
        k = rng.randrange(1, 50)
        got = []
        async for x in stream:
            got.append(x)
            if len(got) == k:
                break
        await stream.aclose()
        assert got == list(range(k))

    async def sum_stream() -> None:
        n, closed = rng.randrange(300), []
        assert await demo.sum_stream(agen(n, closed), runtime=rt()) == sum(range(n))

    async def echo_stream() -> None:
        items = [rng.choice(VALUES) for _ in range(rng.randrange(30))]
        got = [x async for x in demo.echo_stream(items, runtime=rt())]
        assert got == items

    async def take() -> None:
        closed: List[bool] = []
        k = rng.randrange(20)
        assert await demo.take(agen(1_000, closed), k, runtime=rt()) == list(range(k))
        await asyncio.sleep(0)

    async def counter() -> None:
        with demo.Counter() as c:
            await c.add(40)
            assert await c.add(2) == 42

    async def call_identity() -> None:
        v = rng.choice(VALUES)
        assert await demo.call_python(identity, v, runtime=rt()) == v

    async def call_sync_identity() -> None:
        v = rng.choice(VALUES)
        assert await demo.call_python(lambda x: x, v, runtime=rt()) == v

    async def call_raiser() -> None:
        try:
            await demo.call_python(raiser, 3, runtime=rt())
        except Expected as e:
            assert e.args == (3,)
        else:
            raise AssertionError("no exception")

    async def gather() -> None:
        n = rng.randrange(30)
        assert await demo.gather_python(identity, n, runtime=rt()) == list(range(n))

    async def timeout_python() -> None:
        assert await demo.timeout_python(asyncio.sleep, 0.001, 10, runtime=rt()) is True

    async def cancel_call_python() -> None:
        task = asyncio.ensure_future(demo.call_python(asyncio.sleep, 10, runtime=rt()))
        for _ in range(rng.randrange(4)):
            await asyncio.sleep(0)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass

    async def cancel_stream() -> None:
        async def consume() -> None:
            async for _ in demo.count(1_000_000, delay=0.0001, runtime=rt()):
                pass

        task = asyncio.ensure_future(consume())
        await asyncio.sleep(rng.choice([0, 0.001]))
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass

    return [
        echo,
        overflow,
        fail,
        panic,
        cancel_sleep,
        timeout_pending,
        sleep,
        count_all,
        count_partial,
        sum_stream,
        echo_stream,
        take,
        counter,
        call_identity,
        call_sync_identity,
        call_raiser,
        gather,
        timeout_python,
        cancel_call_python,
        cancel_stream,
    ]


async def soak_round(rng: random.Random, n: int) -> None:
    ops = operations(rng)
    chosen = [rng.choice(ops) for _ in range(n)]
    results = await asyncio.gather(*(op() for op in chosen), return_exceptions=True)
    failures = [(op.__name__, r) for op, r in zip(chosen, results) if r is not None]
    assert not failures, failures[:5]


@pytest.mark.parametrize("loop_name", list(LOOPS))
def test_mixed_soak_leaks_nothing(loop_name: str, wake: str) -> None:
    s = seed()
    print(f"seed={s} (ASYNCFFI_STRESS_SEED={s} replays it)")
    rng = random.Random(s)
    before = tallies()
    loop = LOOPS[loop_name]()
    try:
        loop.run_until_complete(soak_round(rng, OPS_PER_ROUND))  # warm-up: caches, arenas
        gc.collect()
        rss_before = rss_bytes()
        for _ in range(scaled(ROUNDS)):
            loop.run_until_complete(soak_round(rng, OPS_PER_ROUND))
        loop.run_until_complete(asyncio.sleep(0.01))
    finally:
        loop.close()
    del loop
    live = wait_until_idle(10)
    assert not any(live.values()), f"seed={s}: {live}"
    assert unbalanced(before, tallies()) == 0, f"seed={s}: {before} -> {tallies()}"
    gc.collect()
    grown = rss_bytes() - rss_before
    print(f"RSS grew by {grown / 2**20:.1f} MiB")
    assert grown < RSS_BOUND, f"seed={s}: RSS grew by {grown / 2**20:.1f} MiB"
