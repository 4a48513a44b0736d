"""Streams both ways: Rust streams read with ``async for``, Python iterators read by Rust.
Order and completeness, backpressure in both directions, early exits that drop the producer,
errors mid-stream, iterators closed when Rust drops them, and exit with streams open."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import sys
import time
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator, List

import anyio
import asyncffi
import pytest
from asyncffi import demo
from asyncffi.pytest_plugin import assert_clean_exit
from conftest import (
    LOOPS,
    every_backend,
    run_python,
    sleep,
    task,
    wait_for_stat,
    wait_until_idle,
)


async def until(condition: Callable[[], object], timeout: float = 1.0) -> None:
    """Waits (on the loop) until ``condition()`` holds, at most ``timeout`` seconds; the
    assertion that follows says what was expected."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        await sleep(0.01)


class SlowSource:
    """An async iterator whose items take a second, and whose ``aclose`` runs ``on_close``."""

    def __init__(self, on_close: Callable[[], Awaitable[None]]) -> None:
        self.on_close = on_close

    def __aiter__(self) -> SlowSource:
        return self

    async def __anext__(self) -> int:
        await sleep(1)
        return 1

    async def aclose(self) -> None:
        await self.on_close()


# --- Rust -> Python ------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 5, 1000, 100_000])
@every_backend
async def test_all_items_arrive_in_order(n: int, runtime: str, wake: str) -> None:
    assert [x async for x in demo.count(n, runtime=runtime)] == list(range(n))


async def test_a_million_items(runtime: str) -> None:
    expected = 0
    async for x in demo.count(1_000_000, runtime=runtime):
        assert x == expected
        expected += 1
    assert expected == 1_000_000


async def test_items_come_in_batches() -> None:
    wakes = asyncffi.stats()["wakes"]
    assert len([x async for x in demo.count(100_000)]) == 100_000
    # One wake-up per item would be 100k; coalesced wakes carry many items each.
    assert asyncffi.stats()["wakes"] - wakes < 100_000 / 20


@pytest.mark.parametrize("buffer", [1, 7, 64])
@every_backend
async def test_the_producer_stays_within_buffer_of_a_slow_consumer(
    buffer: int, runtime: str
) -> None:
    consumed = 0
    async with demo.count(10_000, buffer=buffer, runtime=runtime) as items:
        async for x in items:
            assert x == consumed
            consumed += 1
            await sleep(0.002)
            assert consumed <= demo.count_produced() <= consumed + buffer
            if consumed == 60:
                break
        # A consumer that stops consuming: the producer fills its buffer and waits.
        await sleep(0.1)
        assert consumed < demo.count_produced() <= consumed + buffer


async def test_an_unconsumed_stream_produces_exactly_its_buffer() -> None:
    items = demo.count(1_000_000, buffer=10)
    assert await items.__anext__() == 0
    await asyncio.sleep(0.2)
    assert demo.count_produced() == 10
    await items.aclose()
    await wait_for_stat("live_tasks", 0)
    assert demo.count_produced() == 10


@pytest.mark.parametrize(
    "how",
    [
        "aclose",
        pytest.param(
            "aclosing",
            marks=pytest.mark.skipif(
                sys.version_info < (3, 10), reason="contextlib.aclosing is 3.10+"
            ),
        ),
        "async with",
        "gc",
    ],
)
@every_backend
async def test_leaving_early_drops_the_rust_stream(how: str, runtime: str) -> None:
    cancelled = asyncffi.stats()["cancelled"]
    items = demo.count(10**12, runtime=runtime)
    if how == "aclosing":
        async with contextlib.aclosing(items):
            async for x in items:
                if x == 100:
                    break
    elif how == "async with":
        async with items:
            async for x in items:
                if x == 100:
                    break
    else:
        async for x in items:
            if x == 100:
                break
        if how == "aclose":
            await items.aclose()
            await items.aclose()  # idempotent
            with pytest.raises(StopAsyncIteration):
                await items.__anext__()
        else:
            del items
            gc.collect()
    assert await wait_for_stat("live_tasks", 0) == 0
    assert asyncffi.stats()["cancelled"] == cancelled + 1
    produced = demo.count_produced()
    await sleep(0.05)
    assert demo.count_produced() == produced  # really stopped


@every_backend
async def test_cancelling_the_consumer_drops_the_rust_stream(runtime: str, wake: str) -> None:
    items = demo.count(10, delay=30, runtime=runtime)

    async def consume() -> None:
        async for _ in items:
            pass

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        await wait_for_stat("live_tasks", 1)
        tg.cancel_scope.cancel()
    assert await wait_for_stat("live_tasks", 0) == 0
    with pytest.raises(StopAsyncIteration):  # like an async generator: the stream is over
        await items.__anext__()


@every_backend
async def test_an_error_item_raises_and_ends_the_stream() -> None:
    seen = []
    items = demo.fail_after(3, "bad row")
    with pytest.raises(asyncffi.RustError, match="bad row") as info:
        async for x in items:
            seen.append(x)
    assert seen == [0, 1, 2]
    assert info.value.kind == "demo"
    with pytest.raises(StopAsyncIteration):
        await items.__anext__()


@every_backend
async def test_values_round_trip_through_a_rust_stream(runtime: str) -> None:
    values: List[Any] = [None, True, False, -(2**63), 2**63 - 1, 1.5, "", "héllo", b"\x00b"]
    values += [[1, [2, "x"]], {"a": {"b": None}}, [], {}]
    assert [x async for x in demo.echo_stream(values, runtime=runtime)] == values


async def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="argument 'n' must be >= 0"):
        demo.count(-1)
    with pytest.raises(ValueError, match="buffer must be >= 1"):
        demo.count(5, buffer=0)
    with pytest.raises(TypeError, match="buffer must be an int"):
        demo.count(5, buffer=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="runtime must be"):
        demo.count(5, runtime="trio")
    with pytest.raises(ValueError, match="seconds must be a finite number"):
        await demo.count(5, delay=-1).__anext__()
    assert asyncffi.stats()["live_tasks"] == 0


def test_a_stream_binds_to_the_loop_that_first_iterates_it() -> None:
    items = demo.count(3)  # created outside any loop

    async def main() -> List[int]:
        return [x async for x in items]

    assert asyncio.run(main()) == [0, 1, 2]


def test_closing_the_loop_with_a_stream_open_drops_it() -> None:
    loop = asyncio.new_event_loop()
    items = demo.count(10**12)

    async def start() -> None:
        await items.__anext__()

    loop.run_until_complete(start())
    assert asyncffi.stats()["live_tasks"] == 1
    loop.close()
    assert wait_until_idle()["live_tasks"] == 0


# --- Python -> Rust ------------------------------------------------------------------------


async def numbers(n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield i


@pytest.mark.parametrize("n", [0, 1, 1000, 100_000])
@every_backend
async def test_rust_reads_an_async_generator(n: int, runtime: str, wake: str) -> None:
    assert await demo.sum_stream(numbers(n), runtime=runtime) == sum(range(n))


async def test_rust_reads_a_million_items() -> None:
    assert await demo.sum_stream(numbers(1_000_000)) == sum(range(1_000_000))


@every_backend
async def test_rust_reads_plain_iterables_and_async_iterators(runtime: str) -> None:
    class Countdown:
        def __init__(self, n: int) -> None:
            self.n = n

        def __aiter__(self) -> Countdown:
            return self

        async def __anext__(self) -> int:
            if self.n == 0:
                raise StopAsyncIteration
            self.n -= 1
            await sleep(0)
            return self.n

    assert await demo.sum_stream(range(1000), runtime=runtime) == sum(range(1000))
    assert await demo.sum_stream([1, 2, 3], runtime=runtime) == 6
    assert await demo.sum_stream((i for i in range(10)), runtime=runtime) == 45
    assert await demo.sum_stream(Countdown(100), runtime=runtime) == sum(range(100))


@every_backend
async def test_python_to_rust_to_python(runtime: str, wake: str) -> None:
    out = [x async for x in demo.echo_stream(numbers(50_000), runtime=runtime)]
    assert out == list(range(50_000))


async def test_a_slow_iterator_is_not_held_back_by_batching() -> None:
    # Each item is sent as soon as the iterator waits: the consumer sees item 0 before the
    # generator goes on (it waits for the consumer's signal), so holding items back for a
    # fuller batch would deadlock here.
    got_item = asyncio.Event()

    async def lockstep() -> AsyncIterator[int]:
        for i in range(20):
            got_item.clear()
            yield i
            await got_item.wait()

    out = []

    async def consume() -> None:
        async for x in demo.echo_stream(lockstep()):
            out.append(x)
            got_item.set()

    await asyncio.wait_for(consume(), 10)
    assert out == list(range(20))


@pytest.mark.parametrize("prefetch", [1, 4, 100])
@every_backend
async def test_rust_asks_for_at_most_prefetch_items_ahead(prefetch: int, runtime: str) -> None:
    yielded = 0
    closed = anyio.Event()

    async def tracked() -> AsyncIterator[int]:
        nonlocal yielded
        try:
            for i in range(10**9):
                yielded += 1
                yield i
        finally:
            closed.set()

    assert await demo.take(tracked(), 10, prefetch=prefetch, runtime=runtime) == list(range(10))
    assert yielded <= 10 + prefetch
    with anyio.fail_after(5):
        await closed.wait()  # Rust dropped the stream: the generator closed


@every_backend
async def test_dropping_the_stream_runs_the_generators_finally(runtime: str, wake: str) -> None:
    events: List[str] = []

    async def guarded() -> AsyncIterator[int]:
        try:
            for i in range(10**9):
                yield i
        finally:
            events.append("finally")

    assert await demo.take(guarded(), 3, runtime=runtime) == [0, 1, 2]
    await wait_for_stat("live_py_streams", 0)
    await until(lambda: events)
    assert events == ["finally"]


@every_backend
async def test_cancelling_the_rust_reader_closes_a_waiting_generator(runtime: str) -> None:
    events: List[str] = []

    async def slow() -> AsyncIterator[int]:
        try:
            yield 1
            await sleep(30)
            yield 2
        except anyio.get_cancelled_exc_class():
            events.append("cancelled")
            raise
        finally:
            events.append("finally")

    with anyio.move_on_after(0.1):
        await demo.sum_stream(slow(), runtime=runtime)
    await wait_for_stat("live_py_streams", 0)
    await until(lambda: "finally" in events)
    assert events == ["cancelled", "finally"]


@every_backend
async def test_an_exception_from_the_iterator_reaches_rust_and_comes_back_as_itself(
    runtime: str,
) -> None:
    error = KeyError("missing")

    async def failing() -> AsyncIterator[int]:
        yield 1
        yield 2
        raise error

    with pytest.raises(KeyError) as info:
        await demo.sum_stream(failing(), runtime=runtime)
    assert info.value is error

    seen = []
    with pytest.raises(KeyError) as info:
        async for x in demo.echo_stream(failing(), runtime=runtime):
            seen.append(x)
    assert info.value is error
    assert seen == [1, 2]


async def test_items_rust_cannot_take() -> None:
    with pytest.raises(asyncffi.RustError, match="is not an int") as info:
        await demo.sum_stream(["x"])
    assert info.value.kind == "type"
    # An item that cannot cross: the items before it arrive, then its error ends the stream.
    seen = []
    with pytest.raises(TypeError, match="cannot pass 'object' objects to Rust"):
        async for x in demo.echo_stream([1, 2, object(), 4]):
            seen.append(x)
    assert seen == [1, 2]
    with pytest.raises(OverflowError):
        await demo.sum_stream([1, 2**64])


@every_backend
async def test_the_iterator_runs_in_the_callers_context() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var")

    async def tagged() -> AsyncIterator[str]:
        for i in range(3):
            yield f"{var.get()}-{i}"

    var.set("req")
    assert [x async for x in demo.echo_stream(tagged())] == ["req-0", "req-1", "req-2"]


def test_only_iterables_are_accepted() -> None:
    for bad in ["abc", b"abc", {"a": 1}]:
        with pytest.raises(TypeError, match="wrap it in a list"):
            demo.sum_stream(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="async iterable or an iterable"):
        demo.sum_stream(5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="prefetch must be >= 1"):
        demo.sum_stream([], prefetch=0)


async def test_a_sync_generator_is_closed_when_rust_drops_it() -> None:
    events: List[str] = []

    def gen() -> Iterator[int]:
        try:
            yield from range(10**9)
        finally:
            events.append("closed")

    assert await demo.take(gen(), 5, prefetch=8) == [0, 1, 2, 3, 4]
    await wait_for_stat("live_py_streams", 0)
    await until(lambda: events)
    assert events == ["closed"]


async def test_items_rust_refuses_end_the_stream_with_a_clear_error() -> None:
    # Python can pack these, Rust cannot take them: the items before arrive, then the error.
    # (2**63 crosses as a uint64, which sum_stream, summing i64s, refuses.)
    with pytest.raises(asyncffi.RustError, match="is not an int"):
        await asyncio.wait_for(demo.sum_stream(iter([1, 2**63, 3])), 5)
    closed = []

    async def keyed() -> AsyncIterator[Any]:
        try:
            yield [1]
            yield {1: 2}
            yield [3]
        finally:
            closed.append(True)

    seen = []

    async def consume() -> None:
        async for x in demo.echo_stream(keyed()):
            seen.append(x)

    with pytest.raises(TypeError):
        await asyncio.wait_for(consume(), 5)
    assert seen == [[1]]
    await wait_for_stat("live_py_streams", 0)
    assert closed == [True]


async def test_an_unsendable_item_lets_the_iterators_cleanup_finish() -> None:
    events: List[str] = []

    async def gen() -> AsyncIterator[Any]:
        try:
            yield 1
            yield object()
        finally:
            await asyncio.sleep(0.01)
            events.append("cleanup finished")

    with pytest.raises(TypeError):
        await demo.sum_stream(gen())
    await until(lambda: events)
    assert events == ["cleanup finished"]


async def test_aclose_from_another_task_ends_the_waiting_consumer() -> None:
    items = demo.count(10**9, delay=0.5)
    got: List[int] = []

    async def consume() -> None:
        async for x in items:
            got.append(x)

    consumer = asyncio.ensure_future(consume())
    await asyncio.sleep(0.05)
    await items.aclose()
    await asyncio.wait_for(consumer, 5)  # the loop ends: StopAsyncIteration
    assert got == []


async def test_two_tasks_cannot_wait_on_one_stream() -> None:
    items = demo.count(10, delay=0.5)
    first = asyncio.ensure_future(items.__anext__())
    await asyncio.sleep(0.05)
    with pytest.raises(RuntimeError, match="already waiting"):
        await items.__anext__()
    await items.aclose()
    with pytest.raises(StopAsyncIteration):
        await first


async def test_aclose_drops_a_pending_error() -> None:
    items = demo.fail_after(2, "boom")
    assert await items.__anext__() == 0
    await asyncio.sleep(0.05)  # the error has arrived
    await items.aclose()
    with pytest.raises(StopAsyncIteration):
        await items.__anext__()


async def test_a_huge_prefetch_does_not_block_the_loop() -> None:
    lags: List[float] = []

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(0.001)
            lags.append(loop.time() - start)

    ticking = asyncio.ensure_future(ticker())
    await asyncio.sleep(0.01)
    assert await demo.sum_stream(range(2_000_000), prefetch=2_000_000) == sum(range(2_000_000))
    ticking.cancel()
    assert max(lags) < 0.2, max(lags)  # rounds of 1024 items, the loop runs between them


@every_backend
async def test_an_iterator_released_before_its_first_item_is_closed() -> None:
    closes = 0

    async def count_close() -> None:
        nonlocal closes
        closes += 1

    for _ in range(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(task(demo.sum_stream, SlowSource(count_close)))
            await sleep(0)
            tg.cancel_scope.cancel()
    await wait_for_stat("live_py_streams", 0)
    await until(lambda: closes == 20)
    assert closes == 20


@pytest.mark.parametrize("reading", [False, True], ids=["released at once", "released mid-read"])
@every_backend
async def test_an_aclose_that_waits_still_completes_after_release(reading: bool) -> None:
    # Released mid-read, the pump task itself is cancelled while the iterator waits for an
    # item: the aclose() that follows must still run to its end (under trio, whose
    # cancellation is level-triggered, not inside the cancelled task).
    events: List[str] = []

    class Source(SlowSource):
        async def __anext__(self) -> int:
            events.append("reading")
            return await super().__anext__()

    async def slow_close() -> None:
        events.append("aclose start")
        await sleep(0.01)
        events.append("aclose done")

    async with anyio.create_task_group() as tg:
        tg.start_soon(task(demo.sum_stream, Source(slow_close)))
        if reading:
            await until(lambda: events == ["reading"])
            assert events == ["reading"]
        else:
            await sleep(0)
        tg.cancel_scope.cancel()
    await until(lambda: events[-1:] == ["aclose done"])
    assert [e for e in events if e != "reading"] == ["aclose start", "aclose done"]


async def test_a_failed_start_takes_back_what_it_lent() -> None:
    current_port = asyncffi.demo.library.current_port

    items: Any = asyncffi.RustStream(
        demo.library,
        demo.library.manifest_functions.asyncffi_native_echo_stream,
        (asyncffi.PyStreamArg([1]), "not an int", 0),
    )
    with pytest.raises(TypeError):
        await items.__anext__()
    with pytest.raises(StopAsyncIteration):
        await items.__anext__()
    assert current_port().objects == {}


async def test_rust_reading_a_callable_as_an_iterator_gets_an_error() -> None:
    take = demo.library.manifest_functions.asyncffi_native_take
    # (iterator, prefetch, k, runtime)
    call: Any = asyncffi.RustCallWithCallables(
        demo.library, take, (asyncffi.PyCallableArg(print), 0, 3, 0)
    )
    with pytest.raises(asyncffi.RustError, match="not an iterator"):
        await asyncio.wait_for(call, 5)


# --- exit ----------------------------------------------------------------------------------

EXIT_SCRIPT = """
import asyncio, sys, threading
import asyncffi
from asyncffi import demo

async def forever():
    i = 0
    while True:
        yield i
        i += 1
        if i % 100 == 0:
            await asyncio.sleep(0)

async def main():
    items = demo.count(10**12, delay=0.0)
    await items.__anext__()                                   # a Rust stream, half read
    slow = demo.count(10**12, delay=0.01).__aiter__()
    asyncio.ensure_future(slow.__anext__())                   # one waiting for its next item
    asyncio.ensure_future(demo.sum_stream(forever()))         # Rust reading Python forever
    asyncio.ensure_future(demo.echo_stream(forever()).__anext__())
    await asyncio.sleep(0.2)
    {ending}

def in_thread():
    loop = asyncio.new_event_loop()
    loop.run_until_complete(main())
    loop.run_forever()

{runner}
"""


@pytest.mark.parametrize("runner", ["asyncio.run(main())", "thread"])
@pytest.mark.parametrize("ending", ["pass", "sys.exit(0)"])
def test_exit_with_streams_open(wake: str, runner: str, ending: str) -> None:
    if runner == "thread":
        runner = (
            "threading.Thread(target=in_thread, daemon=True).start()\nimport time; time.sleep(0.5)"
        )
    code = f"import asyncffi; asyncffi.configure(wake={wake!r})\n" + EXIT_SCRIPT.format(
        ending=ending, runner=runner
    )
    proc = run_python(code, timeout=60)
    assert proc.returncode == 0, proc.stderr
    stderr = "".join(
        line
        for line in proc.stderr.splitlines(True)
        if not line.startswith(("Task was destroyed but it is pending!", "task: <Task pending"))
    )
    assert stderr == ""


CLOSE_WHILE_READING_SCRIPT = """
import asyncio, gc, sys
import {loop_module}
import asyncffi
from asyncffi import demo

async def slow_numbers():
    i = 0
    while True:
        yield i
        i += 1
        await asyncio.sleep(0.001)

async def busy_numbers():
    i = 0
    while True:
        yield i
        i += 1

async def main():
    busy = busy_numbers()
    await busy.__anext__()
    asyncio.gather(  # futures, no user Task that asyncio itself would report
        demo.sum_stream(slow_numbers(), prefetch=4),
        demo.take(busy, 10**9, prefetch=8),
    )
    await asyncio.sleep(0.1)

loop = {loop_module}.new_event_loop()
loop.run_until_complete(main())
{ending}
"""


@pytest.mark.parametrize("loop_name", list(LOOPS))
@pytest.mark.parametrize(
    "ending",
    [
        # Closing the loop cancels the Rust tasks; their runtimes drop them a moment later.
        "loop.close(); del loop; gc.collect()\n"
        "import time; deadline = time.monotonic() + 5\n"
        "def live(): return {k: v for k, v in asyncffi.stats().items()\n"
        "                    if k.startswith('live_') and v}\n"
        "while live() and time.monotonic() < deadline: time.sleep(0.01)\n"
        "print(live())",
        "print({})",  # exit with the generators still lent to Rust (3.13 reported aclose())
    ],
    ids=["loop-closed", "exit"],
)
def test_a_loop_closed_or_left_while_rust_reads_python_generators_prints_nothing(
    loop_name: str, ending: str
) -> None:
    code = CLOSE_WHILE_READING_SCRIPT.format(loop_module=loop_name, ending=ending)
    for _ in range(3):
        proc = run_python(code)
        assert_clean_exit(proc)
        assert proc.stdout == "{}\n"
