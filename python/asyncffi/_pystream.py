"""Python iterators read by Rust: ``PyStreamArg`` and the pump that feeds Rust.

A Python async iterator (or async generator, or plain iterable) passed to a Rust function is
lent to Rust on the port of the loop making the call. Rust reads it as a ``Stream`` and asks for
items with ``Pull`` requests; the pump, a task on that loop, iterates the iterator and sends
what Rust asked for in batches, one C call per batch:

- a batch goes out when it holds everything Rust asked for, or when the iterator has to wait
  (the batch is flushed from a ``call_soon`` callback, which runs as soon as the pump yields),
  so a fast iterator sends few large batches and a slow one sends each item without delay;
- the pump never pulls more than Rust asked for: Rust holds at most its prefetch;
- exhaustion, or the exception the iterator raised, is sent once, after the last batch;
- when Rust drops its stream, the pump is cancelled and closes the iterator (``aclose()`` for
  async iterators, ``close()`` for generators), so ``finally`` blocks run.

The pump runs in a copy of the contextvars context of the code that passed the iterator.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from typing import Any, AsyncIterable, Generator, Iterable, List, Optional, Tuple, Union, cast

from ._closing import on_close
from ._errors import exception_fields, status_error
from ._loader import abi
from ._values import pack, packb

ERR_CLOSED = abi.AFFI_STATUS_ERR_CLOSED
OK = abi.AFFI_OUTCOME_OK
ERROR = abi.AFFI_OUTCOME_ERROR

#: Items pulled per round (and so sent per C call) at most.
MAX_BATCH = 1024

_NOT_STREAMS = (str, bytes, bytearray, memoryview, dict)


class PyStreamArg:
    """A Python iterator passed to a Rust function, with the contextvars context of the code
    that passed it (the pump that feeds Rust runs in a copy of it).

    Accepts an async iterable (async generators included) or an iterable. ``str``, ``bytes``
    and ``dict`` are refused: iterating them item by item is almost never what was meant.
    """

    __slots__ = ("context", "is_async", "iterator")

    def __init__(
        self, iterable: Union[AsyncIterable[Any], Iterable[Any]], name: str = "aiter"
    ) -> None:
        if isinstance(iterable, _NOT_STREAMS):
            raise TypeError(
                f"{name} must be an async iterable or an iterable of items, not "
                f"{type(iterable).__name__} (wrap it in a list to send it as one item)"
            )
        if hasattr(type(iterable), "__aiter__"):
            self.iterator: Any = cast(Any, type(iterable)).__aiter__(iterable)
            if not hasattr(type(self.iterator), "__anext__"):
                raise TypeError(f"{name}.__aiter__() returned a non-async-iterator")
            self.is_async = True
        elif hasattr(type(iterable), "__iter__"):
            self.iterator = iter(iterable)  # type: ignore[arg-type]
            self.is_async = False
        else:
            raise TypeError(
                f"{name} must be an async iterable or an iterable, not {type(iterable).__name__}"
            )
        self.context = contextvars.copy_context()


class Pump:
    """Feeds one lent iterator to the Rust stream reading it. Lives in its port's ``objects``
    while Rust holds the stream; used on the port's loop thread only."""

    __slots__ = (
        "arg",
        "batch",
        "credit",
        "done",
        "end_sent",
        "flush_scheduled",
        "lib",
        "loop",
        "object_id",
        "port",
        "released",
        "started",
        "stopping",
        "task",
        "wakeup",
    )

    def __init__(self, port: Any, object_id: int, arg: PyStreamArg) -> None:
        self.port = port
        #: The C ABI of the port's library (where the iterator's stream lives).
        self.lib = port.lib
        self.object_id = object_id
        self.arg = arg
        self.loop: Optional[asyncio.AbstractEventLoop] = port.loop_ref()
        self.credit = 0
        self.batch: List[Any] = []
        self.task: Optional[asyncio.Task[None]] = None
        self.wakeup: Optional[asyncio.Future[None]] = None
        self.flush_scheduled = False
        #: The Rust side has what it will get: the end was sent, or it stopped reading.
        self.done = False
        #: The end of the stream was sent (or Rust refused it: it had stopped reading).
        self.end_sent = False
        #: Rust dropped its stream.
        self.released = False
        #: The pump task has taken its first step (before that, cancelling it skips its body).
        self.started = False
        #: The pump ended the stream itself (an item could not travel) and stops at its next
        #: step.
        self.stopping = False

    # --- requests from Rust ----------------------------------------------------------------

    def pull(self, n: int) -> None:
        """Rust asks for ``n`` more items."""
        self.credit += n
        if self.task is None:
            if self.loop is None or self.done:
                return
            self.task = self.arg.context.copy().run(self.loop.create_task, self._run())
            self.task._log_destroy_pending = False  # type: ignore[attr-defined]
            self.task.add_done_callback(self._ended)
        elif self.wakeup is not None and not self.wakeup.done():
            self.wakeup.set_result(None)

    def release(self) -> None:
        """Rust dropped its stream: stop, and close the iterator."""
        self.released = True
        self.done = True
        task = self.task
        if task is not None and self.started and not task.done():
            if not self.stopping:
                task.cancel()  # the task closes the iterator on its way out
            # else it stops by itself at its next step (not interrupting the iterator, which
            # may be in its own cleanup) and closes the iterator then
            return
        if task is not None and not self.started:
            task.cancel()  # not started: its body, and so its cleanup, never runs
        self.arg.context.copy().run(self._close_now)

    def _close_now(self) -> None:
        """Closes the iterator the pump never read (or that has ended) without a task when that
        completes at once, as it does for a generator that never started; a close that has to
        wait goes on in a task. (A task created now might never run, at loop shutdown, and its
        coroutine would then be reported as never awaited.)"""
        if self.arg.is_async and getattr(self.loop, "is_trio", False):
            self._close_in_task()
            return
        try:
            started = _start_closing(self.arg)
        except Exception as exc:
            self._report(exc)
            return
        if started is None:
            return
        closing, step = started
        if self.loop is not None and not self.loop.is_closed():
            self.task = self.loop.create_task(_finish(closing, step))
            self.task._log_destroy_pending = False  # type: ignore[attr-defined]

    def _close_in_task(self) -> None:
        """Under trio an ``aclose()`` is never stepped outside a trio task (its cancel scopes
        would belong to whatever task runs the drain): it runs in a task of its own."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            self.task = loop.create_task(self._close())

    def abandon(self) -> None:
        """Its port is gone (the loop closed, or the interpreter exits): no step of the pump
        may ever run again. Closes the iterator now if that completes without waiting, so
        that no ``aclose()`` is left for a loop that will not run it, and keeps the pump's
        task from being reported as destroyed while pending. Never raises."""
        self.done = True  # and not ``released``: a pump collected mid-step closes nothing
        if getattr(self.loop, "is_trio", False):
            # The run is ending: trio cancels the pump's task itself, and finalizes the async
            # generators of the run; nothing is stepped from here, outside a trio task.
            return
        task = self.task
        if task is not None:
            quiet(task)
            loop = self.loop
            if not task.done() and (loop is None or not loop.is_running()):
                # Nothing steps it (a loop running in another thread might): close its
                # coroutine, and so the iterator where the pump awaits it, now rather than in
                # whatever order the collector finalizes them.
                try:
                    task.get_coro().close()
                except Exception:
                    pass
        try:
            self.arg.context.copy().run(_close_at_once, self.arg)
        except Exception:  # running in another thread, or its cleanup failed: leave it
            pass

    # --- the pump ---------------------------------------------------------------------------

    async def _run(self) -> None:
        """The pump task. Whatever interrupts it (``KeyboardInterrupt`` at any line, which goes
        on to the loop's caller as asyncio's tasks pass it on), Rust's stream ends: with what
        was sent, then an error."""
        closing = False  # the coroutine is being closed: nothing may be awaited
        try:
            self.started = True
            loop = self.loop
            assert loop is not None
            iterator = self.arg.iterator
            is_async = self.arg.is_async
            anext = type(iterator).__anext__ if is_async else None
            append = self.batch.append
            while not self.done:
                # One round: pull what Rust asked for (at most MAX_BATCH), then send it.
                n = min(self.credit, MAX_BATCH)
                if n <= 0:
                    self.wakeup = loop.create_future()
                    try:
                        await self.wakeup
                    finally:
                        self.wakeup = None
                    continue
                self.credit -= n
                for _ in range(n):
                    append(await anext(iterator) if anext is not None else next(iterator))
                    if not self.flush_scheduled:
                        # First item since the last flush: if the iterator waits before the
                        # round ends, this flush sends what it has meanwhile.
                        if self.done:
                            break
                        self.flush_scheduled = True
                        loop.call_soon(self._flush)
                self._flush()
                if self.credit > 0 and not self.done:
                    await _pause(loop)  # let the loop run between rounds
        except (StopAsyncIteration, StopIteration):
            self._flush()
            self._send_end(None)
        except GeneratorExit:
            # The pump's coroutine is being closed (its loop is gone): nothing may be awaited
            # now, and the iterator, interrupted where it waited, was closed on the way here.
            closing = True
            if not self.released:
                self._send_end(asyncio.CancelledError("the event loop closed"))
            raise
        except BaseException as exc:
            if not self.released:
                self._flush()
                # An interrupt ends the stream as a cancellation: the KeyboardInterrupt itself
                # goes on from here, once.
                self._send_end(exc if isinstance(exc, Exception) else _interrupted())
            if not isinstance(exc, Exception):
                raise  # CancelledError (the task's, not the iterator's), KeyboardInterrupt
        finally:
            if self.released and not closing:
                if getattr(self.loop, "is_trio", False):
                    # Trio's cancellation is level-triggered: inside the pump's cancelled
                    # scope every await of ``aclose()`` would be cancelled too.
                    self._close_in_task()
                else:
                    await self._close()

    def _ended(self, task: asyncio.Task[None]) -> None:
        """The pump task is over: if it could not end Rust's stream (a KeyboardInterrupt where
        the task could not catch it), ends it here, so Rust never waits for it forever."""
        if not task.cancelled():
            task.exception()  # retrieved: a KeyboardInterrupt went on from the loop already
        if not self.end_sent and not self.released:
            self.batch.clear()
            self._send_end(_interrupted())

    def _flush(self) -> None:
        """Sends the batch to Rust (also called from ``call_soon``)."""
        self.flush_scheduled = False
        batch = self.batch
        if self.done:
            batch.clear()
            return
        if not batch:
            return
        try:
            data = packb(batch)
        except Exception:
            self._send_one_by_one()
            return
        items = batch.copy()
        # Sent and taken out of the batch on one line: an interrupt comes before both or after
        # both, so no item is sent twice or lost. (The same list: the pump appends to it.)
        send = self.lib.affi_pystream_items
        status, _ = send(self.object_id, data, len(data)), batch.clear()  # type: ignore[func-returns-value]
        if status == ERR_CLOSED:
            self.done = True  # Rust stopped reading; its release is on its way
        elif status < 0:  # an item Rust refuses (an int outside 64 bits, a non-str key, ...)
            self._send_one_by_one(items)

    def _send_one_by_one(self, batch: Optional[List[Any]] = None) -> None:
        """A batch failed: sends its items one at a time up to the first that cannot travel,
        then ends the stream with that item's error and stops reading the iterator."""
        if batch is None:
            batch = self.batch
        error: Optional[BaseException] = None
        for item in batch:
            try:
                data = packb([item])
            except Exception as exc:
                error = exc
                break
            status = self.lib.affi_pystream_items(self.object_id, data, len(data))
            if status == ERR_CLOSED:
                self.done = True
                break
            if status < 0:
                error = status_error(status, self.lib)
                break
        batch.clear()
        if error is not None:
            self._send_end(error)
            self.stopping = True
            self.released = True  # stop reading: the iterator is closed on the way out

    def _send_end(self, exc: Optional[BaseException]) -> None:
        """Ends Rust's stream, once: exhausted (``exc`` None) or with ``exc``. ``end_sent`` is
        set on the line that sends it: an interrupt comes before both or after both."""
        if self.end_sent:
            return
        self.done = True
        _end = self.lib.affi_pystream_end
        if exc is None:
            self.end_sent, _ = True, _end(self.object_id, OK, b"", 0, 0)
            return
        data = pack(exception_fields(exc))
        exception_id = self.port.keep(exc)
        self.end_sent, status = True, _end(self.object_id, ERROR, data, len(data), exception_id)
        if status < 0:
            self.port.objects.pop(exception_id, None)  # Rust did not take it

    async def _close(self) -> None:
        """Closes the iterator: ``aclose()`` (async) or ``close()`` (generators)."""
        iterator = self.arg.iterator
        try:
            if self.arg.is_async:
                aclose = getattr(iterator, "aclose", None)
                if aclose is not None:
                    await aclose()
            else:
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()
        except Exception as exc:
            self._report(exc)

    def _report(self, exc: Exception) -> None:
        loop = self.loop
        if loop is not None:
            loop.call_exception_handler(
                {"message": "closing an iterator Rust stopped reading raised", "exception": exc}
            )


def _go_on(awaitable: Any, pending: Any) -> Generator[Any, Any, None]:
    """Goes on with ``awaitable`` (a coroutine-like object) whose first step yielded
    ``pending``, as ``await`` would have: what asyncio sends or throws is passed on."""
    while True:
        try:
            yield pending
        except BaseException as exc:
            try:
                pending = awaitable.throw(exc)
            except StopIteration:
                return
        else:
            try:
                pending = awaitable.send(None)
            except StopIteration:
                return


class _Resumed:
    __slots__ = ("awaitable", "pending")

    def __init__(self, awaitable: Any, pending: Any) -> None:
        self.awaitable = awaitable
        self.pending = pending

    def __await__(self) -> Generator[Any, Any, None]:
        return _go_on(self.awaitable, self.pending)


async def _finish(awaitable: Any, pending: Any) -> None:
    """A task's coroutine for ``_go_on`` (asyncio tasks take native coroutines only)."""
    await _Resumed(awaitable, pending)


def _pause(loop: Any) -> Any:
    """``asyncio.sleep(0)``, or trio's checkpoint under trio."""
    if getattr(loop, "is_trio", False):
        import trio

        return trio.lowlevel.checkpoint()
    return asyncio.sleep(0)


def _interrupted() -> asyncio.CancelledError:
    return asyncio.CancelledError("interrupted by KeyboardInterrupt")


def _start_closing(arg: PyStreamArg) -> Optional[Tuple[Any, Any]]:
    """Closes ``arg``'s iterator as far as that goes without waiting: ``close()`` for
    generators, the first step of ``aclose()`` for async iterators. Returns ``(closing, step)``
    when ``aclose()`` has to wait (its awaitable and what its first step yielded), else
    ``None``."""
    iterator = arg.iterator
    if not arg.is_async:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
        return None
    aclose = getattr(iterator, "aclose", None)
    if aclose is None:
        return None
    closing = aclose()
    try:
        step = closing.send(None)
    except StopIteration:
        return None
    return closing, step


def _close_at_once(arg: PyStreamArg) -> None:
    """Closes ``arg``'s iterator without a loop: its ``aclose()`` is stepped once, and closed
    if it would have to wait (which throws ``GeneratorExit`` where the iterator waits)."""
    started = _start_closing(arg)
    if started is not None:
        started[0].close()


def quiet(task: Any) -> None:
    """Keeps a task of asyncffi's own, which its loop will never run again, from being
    reported at its collection: not as destroyed while pending, and its coroutine, if it never
    started, not as never awaited, and if it ended with an exception its done callback never
    read (a ``SystemExit`` that stopped the loop), not as never retrieved. Never raises."""
    try:
        task._log_destroy_pending = False
        if task.done() and not task.cancelled():
            task.exception()  # marks it retrieved: Rust was to read it
        coro = task.get_coro()
        if getattr(coro, "cr_frame", None) is not None and inspect.getcoroutinestate(coro) == (
            inspect.CORO_CREATED
        ):
            coro.close()
    except Exception:  # not a task of ours, or running in another thread: leave it
        pass


def refuse_pull(lib: Any, object_id: int, obj: Any) -> None:
    """Ends the Rust stream (of library ``lib``) reading object ``object_id``, which is not a
    lent iterator."""
    what = "nothing (it was released)" if obj is None else f"a {type(obj).__name__}"
    data = pack(["TypeError", f"Python object {object_id} is {what}, not an iterator"])
    lib.affi_pystream_end(object_id, ERROR, data, len(data), 0)


@on_close
def _abandon_pumps(port: Any, abandon: bool) -> None:
    """Close hook of the lent iterators: if ``abandon``, the pumps of ``port`` are abandoned
    (their iterators closed if that completes at once; see ``Pump.abandon``)."""
    if abandon:
        for obj in list(port.objects.values()):
            if type(obj) is Pump:
                obj.abandon()
