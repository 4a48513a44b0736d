"""Awaiting Rust futures: sleeps, results, errors, panics, objects and the call protocol."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import inspect
import platform
import subprocess
import sys
import time
from typing import Any, List

import anyio
import asyncffi
import pytest
from asyncffi import demo
from conftest import every_backend, gather, sleep, wait_for_stat


@every_backend
async def test_sleep_lets_the_loop_run(runtime: str, wake: str) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await sleep(0.005)
            ticks += 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        start = time.perf_counter()
        assert await demo.sleep(0.1, runtime=runtime) is None
        took = time.perf_counter() - start
        tg.cancel_scope.cancel()
    assert took >= 0.1
    assert ticks >= 5, "the event loop was blocked while Rust slept"


async def test_ten_thousand_concurrent_sleeps_take_about_one_sleep(runtime: str, wake: str) -> None:
    start = time.perf_counter()
    results = await asyncio.gather(*(demo.sleep(1.0, runtime=runtime) for _ in range(10_000)))
    took = time.perf_counter() - start
    assert results == [None] * 10_000
    # 10 000 sequential sleeps would take 10 000 s; concurrently they take about one.
    assert 1.0 <= took < 6.0


async def test_results_resolve_the_right_futures(wake: str) -> None:
    values = await asyncio.gather(*(demo.add(i, i) for i in range(2_000)))
    assert values == [2 * i for i in range(2_000)]


@every_backend
async def test_concurrent_calls_get_their_own_results(runtime: str, wake: str) -> None:
    values = await gather(*(demo.echo(i, runtime=runtime) for i in range(1_000)))
    assert values == list(range(1_000))
    # Through the port, not the eager path: each call waits for a timer first.
    assert (
        await gather(*(demo.sleep(0.01 * (i % 3), runtime=runtime) for i in range(300)))
        == [None] * 300
    )


def test_asyncio_run_accepts_a_call_directly() -> None:
    call = demo.sleep(0)
    assert asyncio.iscoroutine(call)
    assert asyncio.run(call) is None
    assert asyncio.run(demo.add(20, 22)) == 42


def test_calls_bind_when_awaited_not_when_created() -> None:
    call = demo.add(1, 2)  # no running loop here: nothing is spawned yet
    spawned = asyncffi.stats()["spawned"]
    assert "not started" in repr(call)
    assert asyncio.run(call) == 3
    assert asyncffi.stats()["spawned"] == spawned + 1


def test_an_unawaited_call_starts_no_rust_work() -> None:
    spawned = asyncffi.stats()["spawned"]
    call = demo.sleep(10)
    call.close()
    del call
    assert asyncffi.stats()["spawned"] == spawned


@every_backend
async def test_rust_errors_carry_kind_and_message() -> None:
    with pytest.raises(asyncffi.RustError, match=r"^disk on fire$") as info:
        await demo.fail("disk on fire", kind="io")
    assert info.value.kind == "io"
    assert isinstance(info.value, asyncffi.Error)
    with pytest.raises(asyncffi.RustError, match="does not fit in 64 bits") as info:
        await demo.add(2**63 - 1, 1)
    assert info.value.kind == "overflow"


@every_backend
async def test_panics_become_rust_panic_and_the_process_lives() -> None:
    panicked = asyncffi.stats()["panicked"]
    with pytest.raises(asyncffi.RustPanic, match=r"^kaboom é$"):
        await demo.panic("kaboom é")
    assert asyncffi.stats()["panicked"] == panicked + 1
    assert await demo.add(1, 1) == 2


@every_backend
async def test_cpu_work_runs_on_the_blocking_pool() -> None:
    assert await demo.cpu(1_000_000) == sum(range(1_000_000))
    assert await demo.cpu(0) == 0
    with pytest.raises(asyncffi.RustError, match="does not fit") as info:
        await demo.cpu(2**64 - 1)  # the sum leaves 64 bits long before the loop would end
    assert info.value.kind == "overflow"


async def test_tick_reports_offsets() -> None:
    offsets = await demo.tick(0.01, 5)
    assert len(offsets) == 5
    assert all(b > a for a, b in zip(offsets, offsets[1:]))
    assert offsets[0] >= 0.01


@every_backend
async def test_counter_object_keeps_state_and_closes(runtime: str) -> None:
    counter = demo.Counter()
    assert asyncffi.stats()["live_objects"] == 1
    assert await counter.add(5) == 5
    assert await gather(*(counter.add(1) for _ in range(100))) is not None
    assert await counter.add(0) == 105
    counter.close()
    assert counter.closed
    assert asyncffi.stats()["live_objects"] == 0
    with pytest.raises(asyncffi.ClosedError):
        counter.add(1)
    counter.close()  # idempotent


@every_backend
async def test_counter_as_context_manager_and_gc_fallback() -> None:
    with demo.Counter() as counter:
        assert await counter.add(2) == 2
    assert counter.closed
    with pytest.raises(asyncffi.ClosedError):
        with counter:
            pass
    demo.Counter()  # dropped at once: the garbage collector frees it
    if platform.python_implementation() == "PyPy":
        gc.collect()  # PyPy frees what is unreachable only when it collects
    assert asyncffi.stats()["live_objects"] == 0


@every_backend
async def test_an_object_closed_while_its_operation_runs_stays_alive_for_it() -> None:
    counter = demo.Counter()
    results = []
    calls = []

    async def add() -> None:
        calls.append(counter.add(7))
        results.append(await calls[0])  # starts in the same step: no checkpoint between

    async with anyio.create_task_group() as tg:
        tg.start_soon(add)
        while not calls:  # trio runs the tasks it woke in no fixed order
            await sleep(0)
        counter.close()  # the call has started: the Rust task holds the object
    assert results == [7]


@every_backend
async def test_stale_object_handles_raise_closed_error() -> None:
    counter = demo.Counter()
    call = counter.add(7)  # checked now, started when awaited
    # A second wrapper on the same handle:
    twin = asyncffi.RustObject(counter.library, counter.handle)
    counter.close()
    with pytest.raises(asyncffi.ClosedError, match="closed"):
        await call
    with pytest.raises(asyncffi.ClosedError, match="already closed"):
        twin.close()  # freeing a stale handle is an error, not a crash
    assert twin.closed


async def test_rust_call_is_a_coroutine_for_asyncio() -> None:
    call = demo.add(1, 1)
    assert asyncio.iscoroutine(call)
    assert not inspect.iscoroutine(call)  # not a native coroutine, yet asyncio drives it
    task = asyncio.ensure_future(call)
    assert await task == 2
    assert "done" in repr(call)


def test_awaiting_outside_an_event_loop_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="no running event loop"):
        demo.add(1, 1).send(None)


@pytest.mark.parametrize(
    "make", [lambda: demo.add(2, 2), lambda: demo.sleep(0.01), lambda: demo.fail("again")]
)
async def test_a_call_awaited_again_gives_the_same_outcome(make: Any) -> None:
    call = make()  # add, fail: ready on their first poll (eager path); sleep: through the port
    first = await asyncio.gather(call, return_exceptions=True)
    spawned = asyncffi.stats()["spawned"]
    assert await asyncio.gather(call, call, return_exceptions=True) == first * 2
    assert asyncffi.stats()["spawned"] == spawned  # the Rust function ran once


async def test_ready_futures_skip_the_port_and_the_wake() -> None:
    await demo.sleep(0)  # opens the port
    before = asyncffi.stats()
    assert await asyncio.gather(*(demo.add(i, 1) for i in range(100))) == list(range(1, 101))
    assert await demo.echo("text") == "text"
    with pytest.raises(asyncffi.RustError):
        await demo.add(2**63 - 1, 1)
    after = asyncffi.stats()
    assert after["wakes"] == before["wakes"], "an eager result went through the port"
    assert after["completed"] - before["completed"] == 102


# --- a RustCall is also a future ------------------------------------------------------------

#: Before 3.10, ensure_future (and so gather, wait_for, shield) wraps anything asyncio counts as
#: a coroutine in a Task without asking whether it is also a future.
calls_are_futures = pytest.mark.skipif(
    sys.version_info < (3, 10),
    reason="asyncio.ensure_future takes a coroutine that is also a future as a future on 3.10+",
)


@calls_are_futures
async def test_gather_uses_calls_as_futures_without_tasks(runtime: str, wake: str) -> None:
    calls = [demo.sleep(0.05, runtime=runtime) for _ in range(100)] + [demo.add(1, 2)]
    gathered = asyncio.gather(*calls)
    assert asyncio.all_tasks() == {asyncio.current_task()}  # no Task per call
    assert all(isinstance(c, asyncio.Future) for c in calls)
    assert asyncffi.stats()["live_tasks"] == 100  # started by gather, not when created
    assert await gathered == [None] * 100 + [3]


async def test_ensure_future_runs_the_call_in_a_task_that_asyncio_wait_takes() -> None:
    spawned = asyncffi.stats()["spawned"]
    call = demo.sleep(0.2)
    assert asyncffi.stats()["spawned"] == spawned  # nothing runs before it is used
    fut = asyncio.ensure_future(call)
    assert isinstance(fut, asyncio.Task)
    await asyncio.sleep(0)
    assert asyncffi.stats()["spawned"] == spawned + 1  # running, as a Task's coroutine
    done, pending = await asyncio.wait({fut, asyncio.ensure_future(demo.add(1, 2))})
    assert not pending
    assert sorted(map(repr, (f.result() for f in done))) == ["3", "None"]


async def test_inspecting_a_call_does_not_start_it() -> None:
    spawned = asyncffi.stats()["spawned"]
    call = demo.sleep(0)
    assert not asyncio.isfuture(call)
    assert asyncio.iscoroutine(call)
    repr(call)
    assert asyncffi.stats()["spawned"] == spawned
    assert await call is None
    assert asyncffi.stats()["spawned"] == spawned + 1


async def test_done_callbacks_run_in_the_context_current_when_added() -> None:
    where: contextvars.ContextVar[str] = contextvars.ContextVar("where", default="unset")
    seen: List[str] = []
    where.set("added")
    call = demo.sleep(0.01)
    call.add_done_callback(lambda _: seen.append(where.get()))
    other = contextvars.Context()
    call.add_done_callback(lambda _: seen.append(where.get()), context=other)
    where.set("later")
    await call
    await asyncio.sleep(0)
    assert seen == ["added", "unset"]


async def test_future_helpers_accept_calls() -> None:
    calls = [demo.sleep(0.03 * i) for i in (3, 1, 2)]
    order = [await c for c in asyncio.as_completed(calls)]
    assert order == [None, None, None]
    started = [asyncio.ensure_future(c) for c in (demo.add(1, 1), demo.sleep(10))]
    done, pending = await asyncio.wait(started, timeout=0.05)
    assert [c.result() for c in done] == [2]
    (slow,) = pending
    assert slow.cancel()
    assert await asyncio.shield(demo.add(2, 3)) == 5
    got: list = []
    call = demo.sleep(0.01)
    call.add_done_callback(got.append)
    await call
    await asyncio.sleep(0)
    assert got == [call]  # callbacks receive the call itself
    results = await asyncio.gather(demo.fail("no"), demo.add(1, 1), return_exceptions=True)
    assert isinstance(results[0], asyncffi.RustError) and results[1] == 2


async def test_cancelling_a_call_used_as_a_future_drops_the_rust_future(runtime: str) -> None:
    cancelled = asyncffi.stats()["cancelled"]
    fut = demo.pending(runtime=runtime)
    fut.get_loop()  # a future method: starts it on the running loop
    await asyncio.sleep(0.01)
    assert fut.cancel()
    assert not fut.cancel()  # already cancelled
    with pytest.raises(asyncio.CancelledError):
        await fut
    assert await wait_for_stat("cancelled", cancelled + 1) == cancelled + 1


async def test_cancelling_an_unstarted_call_starts_nothing() -> None:
    spawned = asyncffi.stats()["spawned"]
    unstarted = demo.sleep(1)
    assert unstarted.cancel()
    with pytest.raises(asyncio.CancelledError):
        await unstarted
    assert asyncffi.stats()["spawned"] == spawned


async def test_errors_at_start_go_to_the_future() -> None:
    fut = demo.sleep(-1)
    fut.get_loop()  # starts it as a future; the Rust function refuses the argument
    assert fut.done()
    with pytest.raises(ValueError, match="seconds must be"):
        fut.result()


def test_outside_a_loop_a_call_is_not_a_future_yet() -> None:
    call = demo.add(1, 2)
    assert not asyncio.isfuture(call)
    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(call) == 3  # wrapped in a Task, as a coroutine
    finally:
        loop.close()


async def test_a_started_call_can_be_awaited_from_several_tasks() -> None:
    fut = asyncio.ensure_future(demo.echo("shared"))
    fut2 = asyncio.ensure_future(demo.sleep(0.02))

    async def wait(f: Any) -> Any:
        return await f

    assert await asyncio.gather(wait(fut), wait(fut), fut) == ["shared"] * 3
    assert await asyncio.gather(wait(fut2), wait(fut2)) == [None, None]
    assert await fut2 is None


async def test_closing_a_started_call_cancels_whoever_waits_on_it(runtime: str) -> None:
    cancelled = asyncffi.stats()["cancelled"]
    call = demo.pending(runtime=runtime)
    gathered = asyncio.gather(call)
    await asyncio.sleep(0.01)
    call.close()  # the coroutine protocol's close: the Rust task and the future part end
    with pytest.raises(asyncio.CancelledError):
        await gathered
    assert await wait_for_stat("cancelled", cancelled + 1) == cancelled + 1


def test_cancelling_an_unstarted_call_outside_a_loop() -> None:
    call = demo.sleep(1)
    assert call.cancel()
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(call)


def test_an_interrupt_in_the_middle_of_a_drain_loses_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from asyncffi._port import Port

    loop = asyncio.new_event_loop()
    try:

        async def start() -> List[Any]:
            return [asyncio.ensure_future(demo.sleep(0.05)) for _ in range(20)]

        calls = loop.run_until_complete(start())
        outcome = Port._outcome
        interrupted = []

        def interrupt_once(self: Port, c: Any) -> Any:
            if not interrupted:
                interrupted.append(True)
                raise KeyboardInterrupt
            return outcome(self, c)

        monkeypatch.setattr(Port, "_outcome", interrupt_once)
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(asyncio.sleep(1))
        # Every other call of the interrupted batch was resolved (those of later batches once
        # the loop runs again), and the port still wakes.
        loop.run_until_complete(asyncio.sleep(0.2))
        assert sum(not c.done() for c in calls) <= 1
        loop.run_until_complete(asyncio.wait_for(demo.sleep(0.01), 5))
        assert loop.run_until_complete(asyncio.wait_for(demo.echo("after"), 5)) == "after"
    finally:
        for c in calls:
            c.cancel()
        loop.close()


async def test_an_argument_the_c_function_refuses_fails_the_call_each_time() -> None:
    add = demo.library.manifest_functions.asyncffi_native_add
    call: Any = asyncffi.RustCall(demo.library, add, ("not an int", 2))
    for _ in range(2):
        with pytest.raises(TypeError):
            await call
    fut: Any = asyncffi.RustCall(demo.library, add, ("x", 2))
    fut.get_loop()
    assert fut.done()
    with pytest.raises(TypeError):
        fut.result()


NEVER_AWAITED_SCRIPT = """
import asyncio, gc
from asyncffi import demo

async def main():
    demo.fail("never awaited")  # created and dropped: nothing ran in Rust
    started = demo.fail("never retrieved")
    started.get_loop()  # started as a future, failed, and nobody asks for its outcome
    del started
    await demo.sleep(0.01)
    gc.collect()

asyncio.run(main())
print("end")
"""


@pytest.mark.parametrize("flags", [["-X", "dev"], []], ids=["dev-mode", "normal"])
def test_calls_never_awaited_and_errors_never_retrieved_are_reported(flags: List[str]) -> None:
    proc = subprocess.run(
        [sys.executable, *flags, "-c", NEVER_AWAITED_SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "end\n"
    assert "RustCall exception was never retrieved" in proc.stderr
    assert "RustError: never retrieved" in proc.stderr
    # As for a coroutine: reported in debug mode (a finalizer would cost every call otherwise).
    never_awaited = "RuntimeWarning: RustCall asyncffi_native_fail was never awaited"
    assert (never_awaited in proc.stderr) == bool(flags), proc.stderr
