"""Cancelling the awaiting Python task drops the Rust future promptly, on either runtime:
asyncio's task cancellation, and cancel scopes (anyio's, trio's own) on every backend."""

from __future__ import annotations

import asyncio
from typing import List

import anyio
import asyncffi
import pytest
from asyncffi import demo
from conftest import every_backend, sleep, task, wait_for_stat


@every_backend
async def test_cancel_drops_the_rust_future(runtime: str, wake: str) -> None:
    before = asyncffi.stats()
    async with anyio.create_task_group() as tg:
        tg.start_soon(task(demo.pending, runtime=runtime))
        assert await wait_for_stat("live_tasks", 1) == 1
        tg.cancel_scope.cancel()
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


@every_backend
async def test_cancelling_a_task_group_cancels_every_rust_future(runtime: str, wake: str) -> None:
    before = asyncffi.stats()["cancelled"]
    async with anyio.create_task_group() as tg:  # a nursery under trio
        for _ in range(1_000):
            tg.start_soon(task(demo.pending, runtime=runtime))
        assert await wait_for_stat("live_tasks", 1_000) == 1_000
        tg.cancel_scope.cancel()
    assert await wait_for_stat("live_tasks", 0, timeout=2.0) == 0
    assert asyncffi.stats()["cancelled"] == before + 1_000


@every_backend
async def test_cancel_after_completion_is_harmless() -> None:
    results: List[int] = []

    async def add() -> None:
        results.append(await demo.add(1, 2))

    async with anyio.create_task_group() as tg:
        tg.start_soon(add)
        await sleep(0.05)  # the Rust task has finished; its result may not be drained yet
        tg.cancel_scope.cancel()
    assert results in ([], [3])
    assert await demo.add(2, 2) == 4


@every_backend
async def test_cancelled_object_results_are_freed() -> None:
    # A task whose result is an object, cancelled after the object was produced: the port
    # frees it instead of leaking it (the no_leaks fixture checks live_objects).
    counter = demo.Counter()
    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(task(counter.add, 1))
        await sleep(0)
        tg.cancel_scope.cancel()
    counter.close()


@every_backend
async def test_a_timeout_cancels_rust_work(runtime: str) -> None:
    with pytest.raises(TimeoutError):
        with anyio.fail_after(0.05):  # asyncio: cancels the task; trio: a cancel scope
            await demo.pending(runtime=runtime)
    with anyio.move_on_after(0.05) as scope:
        await demo.sleep(30, runtime=runtime)
    assert scope.cancelled_caught
    assert await wait_for_stat("live_tasks", 0, timeout=1.0) == 0


@every_backend
async def test_cancelling_right_after_the_start_never_loses_the_cancel(runtime: str) -> None:
    # Cancel lands while the task is being spawned or polled for the first time.
    for _ in range(2_000):
        async with anyio.create_task_group() as tg:
            tg.start_soon(task(demo.pending, runtime=runtime))
            await sleep(0)
            tg.cancel_scope.cancel()
    assert await wait_for_stat("live_tasks", 0, timeout=2.0) == 0


@every_backend
async def test_a_huge_tick_count_is_no_allocation_bomb() -> None:
    with anyio.move_on_after(0.05):
        await demo.tick(0, 2**32 - 1)
