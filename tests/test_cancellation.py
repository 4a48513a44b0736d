"""Cancelling the awaiting Python task drops the Rust future promptly, on either runtime."""

from __future__ import annotations

import asyncio

import asyncffi
import pytest
from asyncffi import demo
from conftest import wait_for_stat


async def test_cancel_drops_the_rust_future(runtime: str, wake: str) -> None:
    before = asyncffi.stats()
    task = asyncio.ensure_future(demo.pending(runtime=runtime))
    assert await wait_for_stat("live_tasks", 1) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await wait_for_stat("live_tasks", 0, timeout=1.0) == 0, "the Rust future was not dropped"
    after = asyncffi.stats()
    assert after["cancelled"] == before["cancelled"] + 1
    assert after["completed"] == before["completed"]


async def test_wait_for_timeout_cancels_rust_work(runtime: str) -> None:
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(demo.sleep(30, runtime=runtime), 0.05)
    assert await wait_for_stat("live_tasks", 0, timeout=1.0) == 0


async def test_cancelling_a_gather_cancels_every_rust_future(runtime: str, wake: str) -> None:
    before = asyncffi.stats()["cancelled"]
    gathered = asyncio.gather(*(demo.pending(runtime=runtime) for _ in range(1_000)))
    assert await wait_for_stat("live_tasks", 1_000) == 1_000
    gathered.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gathered
    assert await wait_for_stat("live_tasks", 0, timeout=2.0) == 0
    assert asyncffi.stats()["cancelled"] == before + 1_000


async def test_cancel_after_completion_is_harmless() -> None:
    task = asyncio.ensure_future(demo.add(1, 2))
    await asyncio.sleep(0.05)  # the Rust task has finished; its result may not be drained yet
    task.cancel()
    try:
        assert await task == 3
    except asyncio.CancelledError:
        pass
    assert await demo.add(2, 2) == 4


async def test_cancelled_object_results_are_freed() -> None:
    # A task whose result is an object, cancelled after the object was produced: the port
    # frees it instead of leaking it (the no_leaks fixture checks live_objects).
    counter = demo.Counter()
    tasks = [asyncio.ensure_future(counter.add(1)) for _ in range(50)]
    await asyncio.sleep(0)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    counter.close()


async def test_timeouts_with_asyncio_timeout_context(runtime: str) -> None:
    if not hasattr(asyncio, "timeout"):
        pytest.skip("asyncio.timeout needs Python 3.11")
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await demo.pending(runtime=runtime)
    assert await wait_for_stat("live_tasks", 0, timeout=1.0) == 0


async def test_cancelling_right_after_the_start_never_loses_the_cancel(runtime: str) -> None:
    # Cancel lands while the task is being spawned or polled for the first time.
    for _ in range(2_000):
        task = asyncio.ensure_future(demo.pending(runtime=runtime))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert await wait_for_stat("live_tasks", 0, timeout=2.0) == 0


async def test_a_huge_tick_count_is_no_allocation_bomb() -> None:
    task = asyncio.ensure_future(demo.tick(0, 2**32 - 1))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
