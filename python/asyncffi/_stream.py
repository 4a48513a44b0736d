"""``RustStream``: the async iterator an exported Rust stream function returns.

Calling the function only checks and converts its arguments. The first ``__anext__`` binds to
the running loop (or, with no asyncio loop running, to the trio run: see ``_trio``) and starts
the Rust stream as a task; from then on its items arrive through
the loop's port, many per wake-up and per drain, into this stream's inbox, and ``__anext__``
takes them from there without touching Rust.

Backpressure: the Rust producer runs at most ``buffer`` items ahead of this consumer. It starts
with ``buffer`` credits and spends one per item; the consumer gives them back, half a buffer at
a time (and before it waits), with one C call.

Closing: leaving an ``async for`` with ``break`` does not close an iterator by itself (as for
async generators); ``aclose()``, ``async with``, ``contextlib.aclosing``, cancelling a task
waiting in ``__anext__``, or garbage collection cancel the Rust task, which drops the stream on
its runtime at once, even while it waits for credit.
"""

from __future__ import annotations

import collections
from asyncio import AbstractEventLoop, CancelledError, Future
from typing import TYPE_CHECKING, Any, Callable, Generic, Iterator, List, Optional, Tuple, TypeVar

from . import _blocking
from ._call import PyCallableArg, lend, take_back
from ._closing import on_close
from ._errors import SHUT_DOWN, ShutDownError, status_error
from ._port import Port, running_loop
from ._pystream import PyStreamArg
from ._runtime import on_main_thread, state
from ._values import u64

if TYPE_CHECKING:
    from ._library import Library

T = TypeVar("T")

#: Items a Rust stream may run ahead of its consumer unless ``buffer`` says otherwise.
DEFAULT_BUFFER = 1024

_NEW, _RUNNING, _DONE = 0, 1, 2


class Inbox(collections.deque):  # type: ignore[type-arg]
    """The items of one Rust stream that its consumer has not taken yet, and how it ended.
    ``drain`` appends items and resolves the end through the future interface (``set_result``
    and ``set_exception``), as it does for a call's future."""

    __slots__ = ("ended", "error", "waiter")

    def __init__(self) -> None:
        super().__init__()
        #: The consumer's future while it waits for an item or the end.
        self.waiter: Optional[Future[None]] = None
        self.ended = False
        self.error: Optional[BaseException] = None

    def done(self) -> bool:
        return self.ended

    def set_result(self, result: Any, /) -> None:
        self._end(None)

    def set_exception(self, exception: BaseException, /) -> None:
        self._end(exception)

    def cancel(self, msg: Any = None) -> bool:
        self._end(CancelledError() if msg is None else CancelledError(msg))
        return True

    def _end(self, error: Optional[BaseException]) -> None:
        if self.ended:
            return
        self.ended = True
        self.error = error
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)


class RustStream(Generic[T]):
    """An async iterator over a Rust stream: ``async for item in stream``. Iterate it once, on
    one event loop.

    An error the stream ends with is raised by ``__anext__`` (``RustError``, ``RustPanic``, or
    the original Python exception Rust passed on), and the iteration is over.

    The exported C function has the shape ``int64_t f(port, token, *args, uint64_t buffer)``:
    the stream's arguments, then the buffer, and it returns the task id from
    ``asyncffi::spawn_stream``.
    """

    __slots__ = (
        "__weakref__",
        "_args",
        "_buffer",
        "_fn",
        "_grant_at",
        "_inbox",
        "_library",
        "_loop",
        "_port",
        "_state",
        "_task",
        "_token",
        "_unacked",
    )

    def __init__(
        self,
        library: Library,
        fn: Callable[..., int],
        args: Tuple[Any, ...],
        buffer: Optional[int] = None,
    ) -> None:
        self._state = _NEW  # first: ``__del__`` reads it even if the arguments are refused
        self._library = library
        if buffer is None:
            buffer = DEFAULT_BUFFER
        else:
            buffer = u64(buffer, "buffer")
            if buffer < 1:
                raise ValueError("buffer must be >= 1")
        self._fn = fn
        self._args = args
        self._buffer = buffer
        self._grant_at = max(1, buffer // 2)
        self._unacked = 0
        self._inbox: Optional[Inbox] = None
        self._loop: Optional[AbstractEventLoop] = None
        self._port: Optional[Port] = None
        self._token = 0
        self._task = 0

    def __aiter__(self) -> RustStream[T]:
        return self

    def __iter__(self) -> Iterator[T]:
        """Iterates the stream from synchronous code (``for item in stream``), with no event
        loop: each step blocks until items arrive, with the GIL released (see ``_blocking``).
        Leaving the loop (``break``, an exception, Ctrl-C) drops the Rust stream: at once on
        CPython, when the iterator is collected; ``contextlib.closing(iter(stream))`` makes it
        explicit anywhere. An error the stream ends with is raised by the step that reaches it.

        :raises RuntimeError: an event loop runs in this thread (use ``async for``), or the
            stream was iterated already.
        :raises TypeError: the stream reads Python callables or iterators, which need a loop.
        """
        name = self._library.python_name(self._fn)
        _blocking.refuse_in_loop(f"for item in {name}(...)", f"async for item in {name}(...)")
        if self._state != _NEW:
            raise RuntimeError(f"this stream of {name} was iterated already")
        if any(type(arg) in (PyCallableArg, PyStreamArg) for arg in self._args):
            raise TypeError(
                f"for item in {name}(...): the stream reads Python callables or iterators, which "
                f"need an event loop to run them; use `async for item in {name}(...)`"
            )
        self._state = _DONE
        args, self._args = self._args, ()
        return _blocking.stream(self._library, self._fn, args, self._buffer, self._grant_at)

    async def __anext__(self) -> T:
        inbox = self._inbox
        if inbox is None:
            inbox = self._start()
        while True:
            if inbox:
                item: T = inbox.popleft()
                self._unacked += 1
                if self._unacked >= self._grant_at:
                    self._give_back()
                return item
            if inbox.ended or self._state == _DONE:
                self._finish(inbox)
            if self._unacked:
                self._give_back()
            if inbox.waiter is not None:
                raise RuntimeError("anext(): another task is already waiting on this stream")
            assert self._loop is not None
            waiter: Future[None] = self._loop.create_future()
            inbox.waiter = waiter
            try:
                await waiter
            except BaseException:
                # Cancelled while waiting: like an async generator, the stream is over.
                inbox.waiter = None
                self._close()
                raise

    async def aclose(self) -> None:
        """Stops the stream: the Rust task is cancelled and the stream dropped on its runtime.
        Items not yet taken are discarded; later ``__anext__`` calls raise
        ``StopAsyncIteration``. Idempotent."""
        self._close()

    async def __aenter__(self) -> RustStream[T]:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self._close()

    def _start(self) -> Inbox:
        if self._state == _DONE:
            raise StopAsyncIteration
        loop = running_loop()  # asyncio's, or the trio run's host (``_trio``)
        inbox = Inbox()
        self._inbox = inbox
        self._loop = loop
        try:
            port = self._library.current_port(loop)
        except ShutDownError:
            self._args = ()
            if state.shut_down and not on_main_thread():  # a daemon thread at exit: wait
                self._state = _RUNNING
                return inbox
            self._state = _DONE
            raise
        token = next(port.tokens)
        lent: List[int] = []
        try:
            task = self._fn(port.id, token, *lend(port, self._args, lent), self._buffer)
        except BaseException:
            take_back(port, lent)
            self._state = _DONE
            raise
        finally:
            self._args = ()
        if task <= 0:
            take_back(port, lent)
            if state.shut_down and not on_main_thread():
                self._state = _RUNNING
                return inbox
            self._state = _DONE
            raise ShutDownError(SHUT_DOWN) if state.shut_down else status_error(task, port.lib)
        port.pending[token] = inbox
        port.streams[token] = inbox
        self._port = port
        self._token = token
        self._task = task
        self._state = _RUNNING
        return inbox

    def _give_back(self) -> None:
        """Returns the credits of the items taken since the last time."""
        n = self._unacked
        self._unacked = 0
        port = self._port
        if port is not None:  # ERR_CLOSED: the stream has ended; nothing to give back
            port.lib.affi_stream_grant(self._task, n)

    def _finish(self, inbox: Inbox) -> None:
        """Ends the iteration: raises the stream's error once, else ``StopAsyncIteration``."""
        error = inbox.error
        self._close()
        if error is None:
            raise StopAsyncIteration
        raise error

    def _close(self) -> None:
        if self._state == _DONE:
            return
        self._state = _DONE
        port = self._port
        if port is not None:
            if port.pending.pop(self._token, None) is not None:
                port.lib.affi_task_cancel(self._task)  # still running in Rust
            port.streams.pop(self._token, None)
        inbox = self._inbox
        if inbox is not None:
            inbox.clear()
            inbox.error = None
            waiter = inbox.waiter
            if waiter is not None:  # a consumer in another task: it sees the end
                inbox.waiter = None
                if not waiter.done():
                    waiter.set_result(None)

    def __del__(self) -> None:
        if self._state == _RUNNING:
            try:
                self._close()
            except Exception:  # interpreter teardown: nothing left to cancel
                pass

    def __repr__(self) -> str:
        where = {_NEW: "not started", _RUNNING: f"running as task {self._task:#x}", _DONE: "done"}
        return f"<RustStream {where[self._state]}>"


@on_close
def _drop_inboxes(port: Port, abandon: bool) -> None:
    """Close hook of the Rust streams: the inboxes of those read on ``port`` are dropped (their
    readers learn of the close from their loop)."""
    port.streams.clear()
