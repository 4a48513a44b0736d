"""A KeyboardInterrupt at any line of asyncffi's drain, dispatch and pump code.

For each line of those functions (enumerated from their code objects), a trace hook on the loop
thread raises ``KeyboardInterrupt`` there once, the first time the line runs during a workload
that exercises it (calls completing in batches, values of every tag, errors, streams both ways,
Rust calling sync and async Python callables, the loop runtime). The test catches it outside
the loop, as a user would, then goes on using the same loop and a new one: every outstanding
call must complete within a bounded time, and the live counters must return to zero.

Each point is independent of the ones before it: it starts with no port open and judges the
live counters against what it found (a point that leaks fails by itself, and the next one does
not fail for it), and it is bounded: a point still running after ``ASYNCFFI_INTERRUPT_BOUND``
seconds (default 60) fails with the stack of every thread printed, and if Python code cannot
run any more (a hang in native code), the stacks are printed and the process exits 30 s later,
so a hang never holds up CI.

Select the sweep with ``-m interrupts``; the other tests here (the workload's coverage, the lost
wake-up, interrupted eager calls) belong to the main suite. ``ASYNCFFI_INTERRUPT_WAIT`` sets the
bounded wait (seconds); ``ASYNCFFI_INTERRUPT_LOG=path`` appends one line per swept point (ok,
broken or unreached).
"""

from __future__ import annotations

import asyncio
import contextlib
import dis
import faulthandler
import gc
import os
import signal
import sys
import threading
import time
import traceback
import types
from typing import Any, Callable, Dict, Iterator, List, Optional, Set, Tuple

import asyncffi
import pytest
from asyncffi import RustError, RustPanic, _port, _pystream, demo

#: How long outstanding work may take to finish after the interrupt.
WAIT = float(os.environ.get("ASYNCFFI_INTERRUPT_WAIT", "5"))
#: How long the whole workload may take (it takes well under a second on an idle machine).
START = 4 * WAIT
#: How long one swept point may run in all before it fails as hung (its waits add up to less).
BOUND = float(os.environ.get("ASYNCFFI_INTERRUPT_BOUND", "60"))

#: The code that runs on the loop thread between Rust and the user's code.
FUNCTIONS: List[Any] = [
    _port.Port.drain,
    _port.Port._handle,
    _port.Port._drain_later,
    _port.Port._items,
    _port.Port._outcome,
    _port.Port.take_inline,
    _port.Port._error,
    _port.Port._request,
    _port.Port._start_call,
    _port.Port._call_done,
    _port.Port._audit_calls,
    _port.Port._answer_value,
    _port.Port._answer_error,
    _port.Port._answered,
    _port.Port.keep,
    _port._value,
    _port._step_now,
    _port._abandon,
    _pystream.Pump.pull,
    _pystream.Pump.release,
    _pystream.Pump._close_now,
    _pystream.Pump._run,
    _pystream.Pump._flush,
    _pystream.Pump._send_one_by_one,
    _pystream.Pump._send_end,
    _pystream.Pump._close,
]
for _name in ("_finish", "_redo_request", "_ended"):
    # Recovery helpers, where present, are swept too.
    for _owner in (_port.Port, _pystream.Pump):
        if hasattr(_owner, _name):
            FUNCTIONS.append(getattr(_owner, _name))


def _lines(fn: Any) -> List[int]:
    code: types.CodeType = fn.__code__
    starts = {line for _, line in dis.findlinestarts(code) if line is not None}
    starts.discard(code.co_firstlineno)
    return sorted(starts)


def _label(fn: Any, line: int) -> str:
    return f"{fn.__qualname__}:{line - fn.__code__.co_firstlineno}"


POINTS: List[Tuple[Any, int]] = [(fn, line) for fn in FUNCTIONS for line in _lines(fn)]
#: Lines whose code runs in the drain itself: swept with both wake strategies.
DRAIN = {_port.Port.drain, _port.Port._handle, _port.Port._drain_later}


class Interrupter:
    """Raises KeyboardInterrupt once at line ``line`` of ``code``, on the thread it is
    installed on."""

    def __init__(self, code: types.CodeType, line: int) -> None:
        self.code = code
        self.line = line
        self.fired = False

    def __enter__(self) -> Interrupter:
        sys.settrace(self._global)
        return self

    def __exit__(self, *exc: Any) -> None:
        sys.settrace(None)

    def _global(self, frame: types.FrameType, event: str, arg: Any) -> Optional[Callable[..., Any]]:
        if self.fired or frame.f_code is not self.code:
            return None
        return self._local

    def _local(self, frame: types.FrameType, event: str, arg: Any) -> Optional[Callable[..., Any]]:
        if self.fired:
            return None
        if event == "line" and frame.f_lineno == self.line:
            self.fired = True
            raise KeyboardInterrupt
        return self._local


async def _agen(n: int) -> Any:
    for i in range(n):
        yield i
        if i % 100 == 0:
            await asyncio.sleep(0)


def _sync_fn(x: int) -> int:
    return x + 1


async def _async_fn(x: int) -> int:
    await asyncio.sleep(0)
    return x * 2


def _raises(x: int) -> int:
    raise ValueError("from Python")


async def _slow(x: int) -> int:
    await asyncio.sleep(10)
    return x


async def _expect(coro: Any, check: Callable[[Any], bool]) -> None:
    result = await coro
    assert check(result), f"unexpected result: {_summary(result)}"


def _summary(result: Any) -> str:
    if isinstance(result, list) and len(result) > 10:
        dups = len(result) - len(set(map(repr, result)))
        return f"a list of {len(result)} items ({dups} repeated), {result[:3]}...{result[-3:]}"
    return repr(result)


async def _expect_error(coro: Any, kind: type) -> None:
    try:
        await coro
    except kind:
        return
    raise AssertionError(f"expected {kind.__name__}")


async def _echo_many(n: int) -> List[Any]:
    """``n`` calls started together (most finish on their first poll)."""
    return await asyncio.gather(*(demo.echo(i) for i in range(n)))


async def _sleep_many(n: int) -> List[Any]:
    """``n`` calls that complete through the port together: more than one drain turn takes
    (``MAX_BATCHES`` batches of ``BATCH``), so the drain schedules its next turn itself."""
    return await asyncio.gather(*(demo.sleep(0.001) for _ in range(n)))


async def _collect(stream: Any) -> List[Any]:
    return [x async for x in stream]


def workload(flood: bool = True) -> List[Any]:
    """Coroutines that together run every path the sweep interrupts; each checks its result.
    ``flood``: also more completions at once than one drain turn takes (only the drain's own
    lines need it, and it is the slowest part)."""
    values = [None, True, False, 1.5, b"bytes", "text", [1, {"a": [2, None]}], -(2**63)]
    many = _port.BATCH * _port.MAX_BATCHES + 500 if flood else 300
    return [
        _expect(_echo_many(600), lambda r: r == list(range(600))),
        _expect(_sleep_many(many), lambda r: len(r) == many),
        *(_expect(demo.echo(v), lambda r, v=v: r == v) for v in values),
        _expect(demo.add(2, 3), lambda r: r == 5),  # the eager path
        _expect(demo.sleep(0.001), lambda r: r is None),
        _expect_error(demo.fail("no"), RustError),
        _expect_error(demo.panic("boom"), RustPanic),
        _expect(_collect(demo.count(1500)), lambda r: r == list(range(1500))),
        _expect(_collect(demo.count(20, delay=0.001)), lambda r: r == list(range(20))),
        _expect_error(_collect(demo.fail_after(3, "end")), RustError),
        _expect(demo.sum_stream(_agen(2500)), lambda r: r == sum(range(2500))),
        _expect(demo.sum_stream(list(range(100))), lambda r: r == sum(range(100))),
        _expect(demo.sum_stream([1, 2**70]), lambda r: False),  # refused item: ends with error
        _expect(_collect(demo.echo_stream(_agen(300))), lambda r: r == list(range(300))),
        _expect(demo.take(_agen(10**6), 5), lambda r: r == [0, 1, 2, 3, 4]),
        _expect(demo.call_python(_sync_fn, 1), lambda r: r == 2),
        _expect(demo.call_python(_async_fn, 2), lambda r: r == 4),
        _expect(demo.call_python(lambda: "x" * 100), lambda r: r == "x" * 100),
        _expect(demo.call_python(lambda: 2**70), lambda r: False),  # an answer Rust refuses
        _expect_error(demo.call_python(_raises, 1), ValueError),
        _expect(demo.gather_python(_async_fn, 300), lambda r: r == [2 * i for i in range(300)]),
        _expect(demo.timeout_python(_slow, 0.01, 1), lambda r: r is True),
        _expect(demo.echo("loop", runtime="loop"), lambda r: r == "loop"),
        _expect(demo.call_python(_async_fn, 3, runtime="loop"), lambda r: r == 6),
        _expect(demo.gather_python(_sync_fn, 50, runtime="loop"), lambda r: len(r) == 50),
        _expect(demo.sum_stream(_agen(500), runtime="loop"), lambda r: r == sum(range(500))),
    ]


def _wrap(coro: Any) -> Any:
    async def run() -> None:
        try:
            await coro
        except AssertionError:
            raise
        except Exception as exc:
            if isinstance(exc, (RustError, ValueError, OverflowError, TypeError)):
                return  # the refused items and answers: errors are what they should produce
            raise

    return run()


def small_workload() -> List[Any]:
    """A few calls of each kind: enough to show that a loop works."""
    return [
        _expect(asyncio.gather(*(demo.sleep(0.001) for _ in range(300))), lambda r: len(r) == 300),
        _expect(demo.echo("text"), lambda r: r == "text"),
        _expect(_collect(demo.count(300)), lambda r: r == list(range(300))),
        _expect(demo.sum_stream(_agen(300)), lambda r: r == sum(range(300))),
        _expect(demo.call_python(_async_fn, 2), lambda r: r == 4),
        _expect(demo.gather_python(_sync_fn, 20), lambda r: len(r) == 20),
        _expect(demo.call_python(_async_fn, 3, runtime="loop"), lambda r: r == 6),
    ]


async def _all_finish(coros: List[Any], timeout: float) -> None:
    """Runs ``coros`` as tasks; fails if one fails or if they have not all finished within
    ``timeout`` (then they are cancelled, and waited for a second at most: a task that does not
    end when cancelled cannot hang this, as it would ``asyncio.wait_for``)."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    _, stuck = await asyncio.wait(tasks, timeout=timeout)
    if stuck:
        for t in stuck:
            t.cancel()
        await asyncio.wait(stuck, timeout=1)
        raise AssertionError(f"{len(stuck)} of {len(tasks)} did not finish: {next(iter(stuck))!r}")
    for t in tasks:
        t.result()


def _run_workload(loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:  # made on the loop: the workload binds to the running loop
        await _all_finish([_wrap(c) for c in small_workload()], WAIT)

    loop.run_until_complete(main())


def sweep_one(fn: Any, line: int, baseline: Dict[str, int]) -> Tuple[bool, str]:
    """Runs the workload with an interrupt at ``line`` of ``fn``; returns (reached, problem).
    Every wait is bounded; ``baseline`` is what the live counters read before."""
    loop = asyncio.new_event_loop()
    problem = ""
    interrupter = Interrupter(fn.__code__, line)
    tasks: List[asyncio.Task[Any]] = []
    try:

        async def start() -> None:
            tasks.extend(asyncio.ensure_future(_wrap(c)) for c in workload(fn in DRAIN))
            await asyncio.wait(tasks, timeout=START)

        interrupted = False
        with interrupter:
            try:
                loop.run_until_complete(start())
            except KeyboardInterrupt:
                interrupted = True
        if not interrupter.fired:
            stuck = [t for t in tasks if not t.done()]
            if stuck:  # never happens without an interrupt: not a point's problem, the test's
                return True, f"without an interrupt, {len(stuck)} tasks never finished"
            return False, ""
        if not interrupted:
            # It may surface a little later (a task re-raises it, or the loop does after its
            # batch): keep running the loop a moment, as a user going on would.
            try:
                loop.run_until_complete(asyncio.sleep(0.05))
            except KeyboardInterrupt:
                interrupted = True
        if not interrupted:
            problem = "the KeyboardInterrupt did not reach the user; "
        # Going on: every workload task completes (its own result, or the interrupt if it
        # went through it).
        try:
            if tasks:
                loop.run_until_complete(asyncio.wait(tasks, timeout=WAIT))
        except KeyboardInterrupt as exc:
            return True, problem + f"a second interrupt ({exc!r})"
        stuck = [t for t in tasks if not t.done()]
        if stuck:
            problem += f"{len(stuck)} outstanding tasks never finished: {stuck[0]!r}; "
            for t in stuck:
                t.cancel()
            loop.run_until_complete(asyncio.wait(tasks, timeout=1))
            return True, problem
        failed = [
            t.exception()
            for t in tasks
            if not t.cancelled()
            and t.exception() is not None
            and not isinstance(t.exception(), KeyboardInterrupt)
        ]
        if failed:
            problem += f"outstanding work failed: {failed[0]!r}; "
        # The same loop still works.
        try:
            _run_workload(loop)
        except (Exception, KeyboardInterrupt) as exc:
            problem += f"the loop is broken afterwards ({exc!r}); "
    finally:
        loop.close()
    # A new loop works.
    fresh = asyncio.new_event_loop()
    try:
        _run_workload(fresh)
    except (Exception, KeyboardInterrupt) as exc:
        problem += f"a new loop is broken afterwards ({exc!r}); "
    finally:
        fresh.close()
    live = _wait_idle(baseline)
    if live:
        problem += f"live counters stayed up: {live} (before: {baseline})"
    return True, problem


def _live() -> Dict[str, int]:
    s = asyncffi.stats()
    return {k: v for k, v in s.items() if k.startswith("live_")}


def _wait_idle(baseline: Dict[str, int], timeout: float = WAIT) -> Dict[str, int]:
    """Waits until no live counter is above ``baseline``; returns those still above."""
    deadline = time.monotonic() + timeout
    while True:
        gc.collect()
        above = {k: v for k, v in _live().items() if v > baseline.get(k, 0)}
        if not above or time.monotonic() > deadline:
            return above
        time.sleep(0.01)


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Replaces conftest's check here: a test must leave the live counters no higher than it
    found them. So a test that leaks fails by itself, and the tests after it (the sweep's next
    points) are judged on their own work instead of all failing for the first one's leak."""
    gc.collect()
    before = _live()  # not waited for: the test before waited for its own work to settle
    yield
    after = _wait_idle(before)
    assert not after, f"live counters did not return to {before}: {after}"


def _fresh_start() -> Dict[str, int]:
    """Closes the ports an earlier test left open (its loop not closed: that test reported it),
    so that each point starts with none; returns the live counters then."""
    left = [port for registry in _port._registries for port in registry.open_ports()]
    for port in left:
        port.close()
    if left:
        gc.collect()
    return _live()


class PointHung(SystemExit):
    """A swept point ran past ``BOUND``. A ``SystemExit``: no handler in the point catches it,
    and asyncio passes it on from a task to the loop's caller (other ``BaseException``s stay in
    the task they were raised in)."""


def _stacks(interrupted: Any) -> str:
    """The stack of every Python thread (from this file on, for a thread that runs it); for
    this thread, that of frame ``interrupted`` (where a signal handler was called)."""
    names = {t.ident: t.name for t in threading.enumerate()}
    parts = []
    frames = sys._current_frames()
    frames[threading.get_ident()] = interrupted
    for ident, frame in frames.items():
        stack = traceback.extract_stack(frame)
        ours = [i for i, f in enumerate(stack) if f.filename == __file__]
        del stack[: ours[0] if ours else 0]
        parts.append(f"--- thread {names.get(ident, ident)}:\n" + "".join(stack.format()))
    return "\n".join(parts)


@pytest.fixture(scope="session")
def real_stderr(pytestconfig: pytest.Config) -> Iterator[Any]:
    """The process's stderr, not pytest's capture of it: where a last-resort dump must go,
    since a process that exits takes its captured output with it."""
    capman = pytestconfig.pluginmanager.getplugin("capturemanager")
    if capman is None:
        yield sys.stderr
        return
    with capman.global_and_fixture_disabled():
        fd = os.dup(2)
    with os.fdopen(fd, "w") as f:
        yield f


@contextlib.contextmanager
def _bounded(real_stderr: Any) -> Iterator[None]:
    """Raises ``PointHung`` (with every thread's stack) in the block if it runs past ``BOUND``;
    if it has not ended 30 s later (Python code can no longer run: a hang in native code),
    faulthandler prints every thread's stack and ends the process."""
    faulthandler.dump_traceback_later(BOUND + 30, exit=True, file=real_stderr)
    alarm = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if alarm:

        def expired(signum: int, frame: Any) -> None:
            raise PointHung(_stacks(frame))

        previous = signal.signal(signal.SIGALRM, expired)
        signal.setitimer(signal.ITIMER_REAL, BOUND)
    try:
        yield
    finally:
        if alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        faulthandler.cancel_dump_traceback_later()


def _params() -> List[Any]:
    params = []
    for fn, line in POINTS:
        wakes = ["threadsafe", "fd"] if fn in DRAIN else ["threadsafe"]
        for wake in wakes:
            params.append(pytest.param(fn, line, wake, id=f"{_label(fn, line)}-{wake}"))
    return params


@pytest.fixture
def wake_strategy(request: pytest.FixtureRequest) -> Any:
    from asyncffi import _runtime

    previous = _runtime.state.wake
    yield lambda wake: setattr(_runtime.state, "wake", wake)
    _runtime.state.wake = previous


@pytest.fixture
def quick_audits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Audits of the calls into Python every 20 ms, so that the workload (well under a second)
    runs them too: they answer calls whose done callback was lost (``Port._audit_calls``)."""
    monkeypatch.setattr(_port, "AUDIT_DELAY", 0.02)


@pytest.mark.interrupts
@pytest.mark.parametrize(("fn", "line", "wake"), _params())
def test_interrupt_at_line(
    fn: Any, line: int, wake: str, wake_strategy: Any, real_stderr: Any, quick_audits: None
) -> None:
    """A KeyboardInterrupt at this line reaches the user; afterwards nothing is lost or
    stuck, on the same loop and on a new one."""
    if (fn.__code__, line) not in reached_lines():
        pytest.skip("the workload does not run this line")
    wake_strategy(wake)
    label = f"{_label(fn, line)}-{wake}"
    baseline = _fresh_start()
    try:
        with _bounded(real_stderr):
            try:
                reached, problem = sweep_one(fn, line, baseline)
            except KeyboardInterrupt:  # pytest would take it for the user's: stop it here
                reached = True
                problem = "a KeyboardInterrupt escaped where the user could not catch it"
    except PointHung as hung:
        reached, problem = True, f"still running after {BOUND} s; its threads:\n{hung}"
    log = os.environ.get("ASYNCFFI_INTERRUPT_LOG")
    if log:
        with open(log, "a") as f:
            f.write(
                f"{label} {'unreached' if not reached else 'broken' if problem else 'ok'}"
                f" {problem}\n"
            )
    if not reached:
        return  # the workload does not run this line (counted in the summary)
    if problem:
        pytest.fail(f"{label}: {problem}", pytrace=False)


_reached: Set[Tuple[types.CodeType, int]] = set()


def reached_lines() -> Set[Tuple[types.CodeType, int]]:
    """The swept lines the workload runs (traced once, without interrupts)."""
    if _reached:
        return _reached
    codes = {fn.__code__ for fn in FUNCTIONS}
    reached: Set[Tuple[types.CodeType, int]] = set()

    def local(frame: types.FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            reached.add((frame.f_code, frame.f_lineno))
        return local

    def global_(frame: types.FrameType, event: str, arg: Any) -> Any:
        return local if frame.f_code in codes else None

    async def main() -> None:
        await _all_finish([_wrap(c) for c in workload()], START)

    loop = asyncio.new_event_loop()
    sys.settrace(global_)
    try:
        loop.run_until_complete(main())
    finally:
        sys.settrace(None)
        loop.close()
    _reached.update(reached)  # only once the whole workload ran
    return _reached


def test_the_workload_runs_most_swept_lines(quick_audits: None) -> None:
    """The sweep interrupts only the lines its workload runs: that must be most of them."""
    points = {(fn.__code__, line) for fn, line in POINTS}
    reached = points & reached_lines()
    assert len(reached) >= 0.6 * len(points), f"{len(reached)} of {len(points)} lines run"


def test_a_wake_up_lost_to_an_interrupt_is_sent_again(
    wake: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interrupt before the drain's first line (which no Python code can catch) loses the
    wake-up; the port wakes its loop again, and every call still completes."""
    drain = _port.Port.drain
    interrupted: List[bool] = []

    def drain_interrupted_once(self: _port.Port) -> None:
        if not interrupted:
            interrupted.append(True)
            raise KeyboardInterrupt
        drain(self)

    monkeypatch.setattr(_port.Port, "drain", drain_interrupted_once)
    loop = asyncio.new_event_loop()
    try:

        async def start() -> Any:
            return asyncio.gather(*(demo.sleep(0.01) for _ in range(10)))

        calls = loop.run_until_complete(start())
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(asyncio.sleep(2))
        assert interrupted
        loop.run_until_complete(asyncio.wait_for(calls, WAIT))
        assert loop.run_until_complete(asyncio.wait_for(demo.echo("after"), WAIT)) == "after"
    finally:
        loop.close()


@pytest.mark.parametrize("runtime", ["tokio", "loop"])
def test_an_answer_lost_to_an_interrupt_is_given_all_the_same(
    runtime: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interrupt at the entry of the callback that answers Rust's call into an async Python
    callable (where it can catch nothing: the same as at its ``try`` lines) reaches the user,
    and the call is answered all the same once the loop goes on (by the port's audit of its
    calls, ``AUDIT_DELAY`` later): Rust is never left waiting."""
    call_done = _port.Port._call_done
    interrupted: List[int] = []

    def call_done_interrupted_once(self: _port.Port, call_id: int, task: Any) -> None:
        if not interrupted:
            interrupted.append(call_id)
            raise KeyboardInterrupt
        call_done(self, call_id, task)

    monkeypatch.setattr(_port.Port, "_call_done", call_done_interrupted_once)
    loop = asyncio.new_event_loop()
    try:
        call = loop.create_task(demo.call_python(_async_fn, 21, runtime=runtime))
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(asyncio.wait([call], timeout=WAIT))
        assert interrupted
        assert loop.run_until_complete(asyncio.wait_for(call, WAIT)) == 42
        assert not demo.library.current_port(loop).calls
    finally:
        loop.close()


def _lines_run(code: types.CodeType, action: Callable[[], Any]) -> List[int]:
    """The lines of ``code`` that ``action()`` runs."""
    run: Set[int] = set()

    def local(frame: types.FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            run.add(frame.f_lineno)
        return local

    sys.settrace(lambda frame, event, arg: local if frame.f_code is code else None)
    try:
        action()
    finally:
        sys.settrace(None)
    return sorted(run)


@pytest.mark.parametrize(
    "value", ["text" * 50, b"bytes", [1, {"a": None}], 7], ids=["str", "bytes", "packed", "int"]
)
def test_an_interrupted_eager_call_releases_its_outcome(value: Any) -> None:
    """A KeyboardInterrupt at any line of taking a call's outcome on the eager path (the call
    finished on its first poll) reaches the caller, and the outcome's payload, which Rust holds
    for that call until Python releases it (past the port's close too), is released at once:
    the live counters come back down while the loop goes on working, and to zero once it is
    closed. Its completion buffer is not lost either."""
    code = _port.Port.take_inline.__code__
    loop = asyncio.new_event_loop()
    try:
        lines = _lines_run(code, lambda: loop.run_until_complete(demo.echo(value)))
        assert len(lines) >= 5, lines
        baseline = _live()  # the loop's port is open now
        for line in lines:
            with Interrupter(code, line) as interrupter:
                try:
                    loop.run_until_complete(demo.echo(value))
                    outcome = "returned"
                except KeyboardInterrupt:
                    outcome = "interrupted"
            assert interrupter.fired and outcome == "interrupted", (line, outcome)
            assert loop.run_until_complete(demo.echo(value)) == value
            # Its completion buffer is back, not lost to the interrupt (re-made per call).
            assert demo.library.current_port(loop)._one is not None, line
            leaked = _wait_idle(baseline)
            assert not leaked, f"interrupted at take_inline:{line - code.co_firstlineno}: {leaked}"
    finally:
        loop.close()
    assert not _wait_idle({}), f"live counters stayed up: {_live()}"
