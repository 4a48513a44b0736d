"""Rust awaiting Python: coroutines and plain callables as Rust futures, contextvars,
cancellation both ways, original exceptions, lifetimes, several loops at once."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import sys
import threading
import time
import traceback
import weakref
from typing import Any, List

import anyio
import asyncffi
import pytest
from asyncffi import demo
from asyncffi._runtime import runtime_id
from asyncffi._values import packb
from asyncffi.pytest_plugin import assert_clean_exit
from conftest import LOOPS, every_backend, run_python, sleep, task, wait_for_stat

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")


@every_backend
async def test_rust_awaits_a_coroutine_in_the_callers_context(runtime: str, wake: str) -> None:
    async def handler(x: int) -> dict:
        await sleep(0.01)
        return {"x": x, "rid": request_id.get()}

    request_id.set("r-42")
    assert await demo.call_python(handler, 7, runtime=runtime) == {"x": 7, "rid": "r-42"}


@every_backend
async def test_each_call_runs_in_its_own_copy_of_the_context() -> None:
    counter: contextvars.ContextVar[int] = contextvars.ContextVar("counter", default=0)

    def bump(i: int) -> int:
        counter.set(counter.get() + 1)
        return counter.get()

    counter.set(10)
    assert await demo.call_python_n(bump, 5) == 11 * 5  # no call sees another's change
    assert counter.get() == 10


@every_backend
async def test_plain_functions_and_arguments(runtime: str) -> None:
    assert await demo.call_python_n(lambda i: i, 1000, runtime=runtime) == sum(range(1000))
    assert await demo.call_python(lambda *a: list(a), 1, "two", [3.0], runtime=runtime) == [
        1,
        "two",
        [3.0],
    ]
    assert await demo.call_python(dict, runtime=runtime) == {}


@every_backend
async def test_gather_runs_calls_concurrently_in_order(runtime: str, wake: str) -> None:
    async def slow(i: int) -> int:
        await sleep(0.2)
        return i * i

    start = time.perf_counter()
    assert await demo.gather_python(slow, 200, runtime=runtime) == [i * i for i in range(200)]
    assert time.perf_counter() - start < 2.0  # 200 sequential calls would take 40 s


@every_backend
async def test_dropping_the_rust_future_cancels_the_python_task(runtime: str, wake: str) -> None:
    seen: List[str] = []

    async def slow(seconds: float) -> None:
        try:
            await sleep(seconds)
            seen.append("finished")
        except anyio.get_cancelled_exc_class():  # the task's cancellation, on any backend
            seen.append("cancelled")
            raise
        finally:
            seen.append("finally")

    assert await demo.timeout_python(slow, 0.05, 10, runtime=runtime) is True
    await sleep(0.05)
    assert seen == ["cancelled", "finally"]
    assert await demo.timeout_python(slow, 5, 0.01, runtime=runtime) is None
    assert seen[2:] == ["finished", "finally"]


@every_backend
async def test_cancelling_the_outer_task_cancels_all_the_way_down(runtime: str) -> None:
    seen: List[str] = []
    started = anyio.Event()

    async def slow() -> None:
        started.set()
        try:
            await sleep(30)
        finally:
            seen.append("finally")

    async with anyio.create_task_group() as tg:
        tg.start_soon(task(demo.call_python, slow, runtime=runtime))
        await started.wait()
        tg.cancel_scope.cancel()
    for _ in range(100):
        if seen:
            break
        await sleep(0.01)
    assert seen == ["finally"]
    assert await wait_for_stat("live_calls", 0) == 0


@every_backend
async def test_python_exceptions_come_back_as_the_original_object(runtime: str) -> None:
    raised: List[BaseException] = []

    async def bad(x: int) -> None:
        await sleep(0)
        err = KeyError(f"missing {x}")
        raised.append(err)
        raise err

    with pytest.raises(KeyError) as info:
        await demo.call_python(bad, 3, runtime=runtime)
    assert info.value is raised[0]
    assert "bad" in [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]

    def sync_bad() -> None:
        raise ValueError("plain function")

    with pytest.raises(ValueError, match="plain function"):
        await demo.call_python(sync_bad, runtime=runtime)
    with pytest.raises(ZeroDivisionError):
        await demo.gather_python(lambda i: 1 // (i - 5), 10, runtime=runtime)


async def test_rust_sees_type_name_and_message_of_errors() -> None:
    # call_python_n needs ints: a str result is a Rust error of its own ...
    with pytest.raises(asyncffi.RustError, match="not an int") as info:
        await demo.call_python_n(lambda i: "x", 3)
    assert info.value.kind == "type"
    # ... and a value Python cannot send is refused on the Python side, as a TypeError.
    with pytest.raises(TypeError, match="cannot pass 'object' objects"):
        await demo.call_python(object)


def test_non_callables_are_refused_when_called() -> None:
    with pytest.raises(TypeError, match="argument 'fn' must be callable, not int"):
        demo.call_python(5)  # type: ignore[arg-type]


@every_backend
async def test_the_callable_lives_while_rust_holds_it_and_is_released_after() -> None:
    # Events, not sleeps: the checks run while the call is certainly in flight, however slow
    # the machine.
    started, release = anyio.Event(), anyio.Event()

    class Handler:
        async def __call__(self, x: int) -> int:
            started.set()
            await release.wait()
            return x + 1

    handler = Handler()
    ref = weakref.ref(handler)
    results = []

    async def wait(call: Any) -> None:
        results.append(await call)

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait, demo.call_python(handler, 1))
        del handler
        await started.wait()
        gc.collect()
        assert ref() is not None, "the callable died while Rust held it"
        assert asyncffi.stats()["live_callables"] == 1
        release.set()
    assert results == [2]
    assert await wait_for_stat("live_callables", 0) == 0
    # The release request is handled on the loop: give it turns until the callable is gone.
    deadline = time.monotonic() + 5.0
    while ref() is not None and time.monotonic() < deadline:
        await sleep(0.005)
        gc.collect()
    assert ref() is None, "the callable outlived Rust's last reference"


@pytest.mark.parametrize("runtime", ["tokio", "async-std"])
def test_loops_in_four_threads_each_run_their_own_calls(runtime: str) -> None:
    errors: List[BaseException] = []

    def worker(k: int) -> None:
        async def main() -> None:
            loop = asyncio.get_running_loop()

            async def where(i: int) -> list:
                await asyncio.sleep(0)
                return [k, i, asyncio.get_running_loop() is loop]

            got = await asyncio.gather(
                *(demo.call_python(where, i, runtime=runtime) for i in range(1_000))
            )
            assert got == [[k, i, True] for i in range(1_000)]

        try:
            factory = list(LOOPS.values())[k % len(LOOPS)]
            loop = factory()
            try:
                loop.run_until_complete(main())
            finally:
                loop.close()
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors


def test_closing_the_loop_fails_pending_calls_and_frees_everything(wake: str) -> None:
    loop = asyncio.new_event_loop()
    started = 0

    async def slow() -> None:
        nonlocal started
        started += 1
        await asyncio.sleep(30)

    async def begin() -> list:
        tasks = [asyncio.ensure_future(demo.call_python(slow)) for _ in range(100)]
        while started < 100:
            await asyncio.sleep(0.01)
        return tasks

    tasks = loop.run_until_complete(begin())
    assert asyncffi.stats()["live_calls"] == 100
    loop.close()
    del tasks, loop
    # no_leaks (conftest) checks that calls, callables and tasks all went to zero.


EXIT_SCRIPT = """
import asyncio, asyncffi
from asyncffi import demo
asyncffi.configure(wake={wake!r})

async def slow(i):
    await asyncio.sleep(30)

async def main():
    tasks = [asyncio.ensure_future(demo.gather_python(slow, 100, runtime={runtime!r}))
             for _ in range(20)]
    await asyncio.sleep(0.2)
    print(asyncffi.stats()["live_calls"], flush=True)

loop = asyncio.new_event_loop()
loop.run_until_complete(main())
"""


@pytest.mark.parametrize("wake", ["threadsafe", "fd"])
@pytest.mark.parametrize("runtime", ["tokio", "async-std"])
def test_exit_with_calls_in_flight(wake: str, runtime: str) -> None:
    proc = run_python(EXIT_SCRIPT.format(wake=wake, runtime=runtime))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "2000\n"
    stderr = "".join(
        line
        for line in proc.stderr.splitlines(True)
        if not line.startswith(("Task was destroyed but it is pending!", "task: <Task pending"))
    )
    assert stderr == ""


async def test_a_callable_cancelling_itself_cancels_the_call_and_spares_the_batch() -> None:
    async def gives_up() -> None:
        raise asyncio.CancelledError()

    async def fine(x: int) -> int:
        return x

    results = await asyncio.gather(
        demo.call_python(gives_up), demo.call_python(fine, 5), return_exceptions=True
    )
    assert isinstance(results[0], asyncio.CancelledError)
    assert results[1] == 5


@pytest.mark.skipif(
    sys.version_info < (3, 11),
    reason="asyncio passes a CancelledError's message on to the awaiting task from 3.11 on "
    "(bpo-45390)",
)
async def test_a_cancelled_error_from_a_callable_keeps_its_message(runtime: str) -> None:
    async def gives_up() -> None:
        await asyncio.sleep(0)
        raise asyncio.CancelledError("why")

    def gives_up_now() -> None:
        raise asyncio.CancelledError("why not")

    for fn, message in ((gives_up, "why"), (gives_up_now, "why not")):
        with pytest.raises(asyncio.CancelledError) as info:
            await demo.call_python(fn, runtime=runtime)
        assert info.value.args == (message,)
        (result,) = await asyncio.gather(
            demo.call_python(fn, runtime=runtime), return_exceptions=True
        )
        assert isinstance(result, asyncio.CancelledError) and result.args == (message,)


async def test_an_iterator_adopted_as_a_callable_fails_the_call_with_a_type_error(
    runtime: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Rust code that adopts a lent id as the wrong kind gets an answer, never a hang.
    data = packb([])
    call: asyncffi.RustCall[object] = asyncffi.RustCallWithCallables(
        demo.library,
        demo.library.manifest_functions.asyncffi_native_call_python,
        (asyncffi.PyStreamArg(iter([1, 2])), data, len(data), runtime_id(runtime)),
    )
    with pytest.raises(TypeError, match=r"Python object \d+ is an iterator, not a callable"):
        await asyncio.wait_for(call, 10)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_stop_iteration_from_python_becomes_a_runtime_error() -> None:
    def exhausted() -> None:
        next(iter([]))

    with pytest.raises(RuntimeError, match="StopIteration") as info:
        await demo.call_python(exhausted)
    assert isinstance(info.value.__cause__, StopIteration)


async def test_unprintable_exception_text_still_answers_the_call() -> None:
    surrogate = b"\xff".decode("utf-8", "surrogateescape")

    def bad() -> None:
        raise ValueError("bad name " + surrogate)

    with pytest.raises(ValueError, match="bad name"):
        await asyncio.wait_for(demo.call_python(bad), 5)


async def test_callables_stay_lent_when_the_call_finishes_on_its_first_poll() -> None:
    # On async-std a zero timeout is over at the first poll: the call returns inline while its
    # Call request is still queued. The callable must still be there when Python handles it.
    seen: List[int] = []
    assert await demo.timeout_python(lambda: seen.append(1), 0, runtime="async-std") is True
    assert await wait_for_stat("live_callables", 0) == 0
    await asyncio.sleep(0.05)
    assert seen == [1]


async def test_a_huge_gather_count_is_no_allocation_bomb() -> None:
    # The largest count a list result can hold starts (a window at a time) and cancels cleanly.
    task = asyncio.ensure_future(demo.gather_python(lambda i: i, 2**32 - 1))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await wait_for_stat("live_calls", 0) == 0


@pytest.mark.parametrize("n", [2**32, 2**40, 2**64 - 1])
async def test_a_gather_count_no_list_can_hold_is_refused(n: int) -> None:
    calls = asyncffi.stats()["live_calls"]
    with pytest.raises(
        ValueError, match=r"more results than a list can hold \(at most 4294967295\)"
    ):
        await demo.gather_python(lambda i: i, n)
    assert asyncffi.stats()["live_calls"] == calls


async def test_gather_keeps_a_bounded_window_of_calls_in_flight(runtime: str) -> None:
    release = asyncio.Event()
    started: List[int] = []

    async def blocked(i: int) -> int:
        started.append(i)
        await release.wait()
        return i

    task = asyncio.ensure_future(demo.gather_python(blocked, 20_000, runtime=runtime))
    # Two chunks of 1024 calls start, and no more while none of them is answered.
    assert await wait_for_stat("live_calls", 2048) == 2048
    await asyncio.sleep(0.2)
    assert asyncffi.stats()["live_calls"] == 2048
    assert sorted(started) == list(range(2048))
    release.set()
    assert await task == list(range(20_000))
    assert await wait_for_stat("live_calls", 0) == 0


@pytest.mark.parametrize("n", [0, 1, 1023, 1024, 1025, 2048, 2049, 5000])
async def test_gather_results_stay_in_order_across_windows(n: int, runtime: str) -> None:
    async def jittery(i: int) -> int:
        await asyncio.sleep((i * 7919 % 13) / 2000)  # answers arrive out of order
        return -i

    assert await demo.gather_python(jittery, n, runtime=runtime) == [-i for i in range(n)]


async def test_gather_reports_the_first_failure_in_order(runtime: str) -> None:
    async def failing(i: int) -> int:
        if i == 700:
            await asyncio.sleep(0.1)  # fails last, but comes first in order
            raise ValueError("call 700")
        if i in (1023, 1500):
            raise ValueError(f"call {i}")
        return i

    with pytest.raises(ValueError, match=r"^call 700$"):
        await demo.gather_python(failing, 3000, runtime=runtime)
    assert await wait_for_stat("live_calls", 0) == 0


GATHER_MEMORY_SCRIPT = """
import asyncio, resource, time
from asyncffi import demo

def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

async def main():
    assert await demo.gather_python(lambda i: None, 5000, runtime={runtime!r}) == [None] * 5000
    before = peak_mib()
    start = time.monotonic()
    result = await demo.gather_python(lambda i: None, {n}, runtime={runtime!r})
    elapsed = time.monotonic() - start
    assert len(result) == {n} and result[0] is None and result[-1] is None
    print(peak_mib() - before, elapsed)

asyncio.run(main())
"""


@pytest.mark.parametrize("runtime", ["tokio", "loop"])
def test_gather_memory_stays_bounded_for_a_large_n(runtime: str) -> None:
    # All calls in flight at once took ~325 bytes each of peak RSS (~195 MB for these 600k); a
    # window of calls leaves the results (600k Rust values of 32 bytes, then a Python list of
    # 600k Nones: ~24 MB) as the only growth.
    n = 600_000
    proc = run_python(GATHER_MEMORY_SCRIPT.format(n=n, runtime=runtime), timeout=240)
    assert_clean_exit(proc)
    growth_mib, elapsed = map(float, proc.stdout.split())
    assert growth_mib < 100, f"peak RSS grew by {growth_mib:.0f} MiB for {n} calls"
    assert elapsed < 120, f"{n} calls took {elapsed:.0f} s"


async def test_the_loop_runtime_calls_python_without_waking_the_loop(wake: str) -> None:
    async def double(i: int) -> int:
        return 2 * i

    await demo.call_python_n(double, 1, runtime="loop")  # the port is open
    wakes = asyncffi.stats()["wakes"]
    assert await demo.call_python_n(double, 2000, runtime="loop") == 2 * sum(range(2000))
    # Each call is answered on the loop thread, which then polls the Rust future itself:
    # no thread hop and no wake-up per call (a tokio task needs one per call).
    assert asyncffi.stats()["wakes"] - wakes < 50


@pytest.mark.parametrize("loop_name", list(LOOPS))
def test_closing_the_loop_after_cancelling_a_call_into_python_prints_nothing(
    loop_name: str,
) -> None:
    # Rust drops its call; the Python task is still finishing (slow to cancel) when the loop
    # closes. That task is asyncffi's, run on Rust's behalf: it is never reported.
    proc = run_python(
        f"""
        import asyncio, gc
        import {loop_name}
        import asyncffi
        from asyncffi import demo

        async def slow_to_cancel():
            try:
                await asyncio.sleep(100)
            except asyncio.CancelledError:
                await asyncio.sleep(100)

        async def main():
            call = demo.call_python(slow_to_cancel)
            call.get_loop()  # started, as a future
            await asyncio.sleep(0.05)
            call.cancel()
            await asyncio.sleep(0.05)

        for _ in range(3):
            loop = {loop_name}.new_event_loop()
            loop.run_until_complete(main())
            loop.close()
            del loop
            gc.collect()
        print({{k: v for k, v in asyncffi.stats().items() if k.startswith("live_") and v}})
        """
    )
    assert_clean_exit(proc)
    assert proc.stdout == "{}\n"


@pytest.mark.parametrize("loop_name", list(LOOPS))
def test_a_coroutine_rust_awaits_is_its_own_task_from_its_first_line(
    loop_name: str, runtime: str
) -> None:
    """The coroutine's first step runs at once (an eager task), as a task: there
    ``asyncio.current_task()`` is its own task, so ``asyncio.timeout`` and task groups work
    before it first suspends, whether it then returns at once or suspends first."""
    seen: List[Any] = []

    async def probe(suspend: bool) -> int:
        me = asyncio.current_task()
        if sys.version_info >= (3, 11):
            async with asyncio.timeout(5):  # needs a current task
                pass
        if suspend:
            await asyncio.sleep(0)
        seen.append((me, me is asyncio.current_task()))
        return 7

    async def main() -> None:
        outer = asyncio.current_task()
        for suspend in (False, True):
            assert await demo.call_python(probe, suspend, runtime=runtime) == 7
        assert len(seen) == 2
        for me, same in seen:
            assert me is not None and me is not outer and same

    loop = LOOPS[loop_name]()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


@pytest.mark.parametrize("loop_name", list(LOOPS))
def test_the_loops_task_factory_makes_the_tasks_of_calls_from_rust(
    loop_name: str, runtime: str
) -> None:
    made: List[str] = []

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
        made.append(coro.__qualname__)
        return asyncio.Task(coro, loop=loop, **kwargs)

    async def answer(x: int, suspend: bool) -> int:
        if suspend:
            await asyncio.sleep(0)
        return x + 1

    async def main() -> None:
        assert await demo.call_python(answer, 1, False, runtime=runtime) == 2
        assert await demo.call_python(answer, 2, True, runtime=runtime) == 3

    loop = LOOPS[loop_name]()
    loop.set_task_factory(factory)
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert made.count(answer.__qualname__) == 2


def test_a_coroutine_that_returns_at_once_is_answered_in_the_same_turn() -> None:
    """Its first step runs when the call starts, and its answer is given there: Rust awaiting
    100 such calls one after another on the loop's thread needs far fewer than the two turns
    of the loop per call that a task started in the next turn would take."""
    turns = 0
    loop = asyncio.new_event_loop()
    run_once = loop._run_once  # type: ignore[attr-defined]

    def counted() -> None:
        nonlocal turns
        turns += 1
        run_once()

    async def at_once(i: int) -> int:
        return i

    loop._run_once = counted  # type: ignore[attr-defined]
    try:
        assert loop.run_until_complete(demo.call_python_n(at_once, 100, runtime="loop")) == 4950
    finally:
        loop.close()
    assert turns < 50, turns
