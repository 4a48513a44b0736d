"""``RustCall``: the awaitable an exported Rust function returns.

Calling an exported function only checks and converts its arguments; nothing runs in Rust
until the call is first awaited. Then it binds to the running loop (so ``asyncio.run(f())``
works), spawns the Rust future and waits on an ordinary asyncio future that the loop's port
resolves. A ``RustCall`` is a coroutine in asyncio's eyes (``asyncio.iscoroutine`` is true):
``await`` it, pass it to ``asyncio.run``, ``create_task`` or ``gather``.

Cancellation: cancelling the task that awaits a ``RustCall`` (``task.cancel()``,
``asyncio.wait_for``, ``asyncio.timeout``, loop shutdown) cancels the Rust task, which drops
its future on its runtime at the next poll. Closing an unawaited ``RustCall`` does nothing:
no Rust work was started.
"""

from __future__ import annotations

import collections.abc
import contextvars
from asyncio import Future, get_running_loop
from typing import Any, Callable, Dict, Generator, Generic, List, Optional, Tuple, TypeVar

from ._errors import status_error
from ._loader import lib
from ._port import Port, ShutDownError, current_port
from ._pystream import PyStreamArg
from ._runtime import state

T = TypeVar("T")

_cancel = lib.affi_task_cancel


#: Marks a call whose outcome was delivered on its first step (the eager path).
_FINISHED: Any = object()


class RustCall(Generic[T]):
    """An awaitable call of an exported Rust function. Await it once.

    Thread safety: await it on one event loop; the Rust future runs on its runtime's threads
    and reports back to that loop only.
    """

    __slots__ = ("_args", "_fn", "_fut", "_port", "_task", "_token")

    def __init__(self, fn: Callable[..., int], args: Tuple[Any, ...]) -> None:
        self._fn = fn
        self._args = args
        self._fut: Optional[Future[T]] = None
        self._port: Optional[Port] = None
        self._token = 0
        self._task = 0

    def __await__(self) -> Generator[Any, None, T]:
        return self

    def __iter__(self) -> RustCall[T]:
        return self

    def __next__(self) -> Any:
        fut = self._fut
        if fut is None:
            return self._start()
        if fut is _FINISHED:
            raise RuntimeError("cannot reuse an already awaited RustCall")
        if not fut.done():
            raise RuntimeError("await wasn't used with future")
        self._fut = _FINISHED  # like a coroutine: its outcome is delivered once
        raise StopIteration(fut.result())

    def send(self, value: None) -> Any:
        """Coroutine protocol: resume (asyncio sends ``None``)."""
        if value is not None and self._fut is None:
            raise TypeError("can't send non-None value to a just-started RustCall")
        return self.__next__()

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        """Coroutine protocol: an exception (usually ``CancelledError``) delivered while
        waiting. Cancels the Rust task if it is still running, then raises it."""
        self._abandon()
        if val is None:
            val = typ() if isinstance(typ, type) else typ
        if tb is not None:
            val = val.with_traceback(tb)
        raise val

    def close(self) -> None:
        """Coroutine protocol: cancels the Rust task if it is still running."""
        self._abandon()

    def _start(self) -> Future[T]:
        loop = get_running_loop()
        try:
            port = current_port(loop)
        except ShutDownError:
            return self._never(loop)
        token = next(port.tokens)
        task = self._fn(port.id, token, *self._prepare(port))
        if task <= 0:
            if task == 0:  # ready on its first poll: the outcome is here already
                self._args = ()
                self._fut = _FINISHED
                raise StopIteration(port.take_inline(token))
            self._failed(port)
            if state.shut_down:
                return self._never(loop)
            raise status_error(task)
        fut: Future[T] = loop.create_future()
        port.pending[token] = fut
        self._fut = fut
        self._port = port
        self._token = token
        self._task = task
        self._args = ()
        fut._asyncio_future_blocking = True
        return fut

    def _prepare(self, port: Port) -> Tuple[Any, ...]:
        """The C arguments of the call on ``port``."""
        return self._args

    def _failed(self, port: Port) -> None:
        """The C function refused the call (a negative status)."""

    def _never(self, loop: Any) -> Future[T]:
        """After shutdown (interpreter exit) a call never completes, like everything else in
        the daemon threads still running then; it raises nothing that would print."""
        fut: Future[T] = loop.create_future()
        self._fut = fut
        fut._asyncio_future_blocking = True
        return fut

    def _abandon(self) -> None:
        port = self._port
        if port is not None and port.pending.pop(self._token, None) is not None:
            _cancel(self._task)

    @property
    def __name__(self) -> str:
        """The exported C function's name (asyncio shows it in task reprs)."""
        return _function_name(self._fn)

    def __repr__(self) -> str:
        name = self.__name__
        if self._fut is None:
            where = "not started"
        elif self._fut is _FINISHED or self._fut.done():
            where = "done"
        else:
            where = f"running as task {self._task:#x}"
        return f"<RustCall {name} {where}>"


collections.abc.Coroutine.register(RustCall)


class PyCallableArg:
    """A Python callable passed to a Rust function, with the contextvars context of the code
    that passed it (each call runs in a copy of it)."""

    __slots__ = ("context", "fn")

    def __init__(self, fn: Callable[..., Any], name: str = "fn") -> None:
        if not callable(fn):
            raise TypeError(f"{name} must be callable, not {type(fn).__name__}")
        self.fn = fn
        self.context = contextvars.copy_context()


def lend(port: Port, args: Tuple[Any, ...], lent: List[int]) -> Tuple[Any, ...]:
    """The C arguments for ``args`` on ``port``: Python callables (``PyCallableArg``) and
    iterators (``PyStreamArg``) are lent to Rust there and replaced by their ids, which are
    added to ``lent``."""
    out = []
    for arg in args:
        t = type(arg)
        if t is PyCallableArg:
            object_id = port.register(arg.fn, arg.context)
        elif t is PyStreamArg:
            object_id = port.register_stream(arg)
        else:
            out.append(arg)
            continue
        lent.append(object_id)
        out.append(object_id)
    return tuple(out)


def take_back(port: Port, lent: List[int]) -> None:
    """The exported function refused the call: forgets the objects lent for it. Popping twice
    is harmless: ids are never reused, and a Release from Rust (if it had adopted one before
    failing) finds nothing."""
    for object_id in lent:
        port.objects.pop(object_id, None)


class RustCallWithCallables(RustCall[T]):
    """A ``RustCall`` whose arguments include Python callables (``PyCallableArg``) or
    iterators (``PyStreamArg``): they are lent to Rust, on the port of the loop that awaits the
    call, when the call starts. The exported function takes them over (and releases them when
    it drops them); if it refuses the call, they are taken back."""

    __slots__ = ("_lent",)

    def _prepare(self, port: Port) -> Tuple[Any, ...]:
        self._lent: List[int] = []
        return lend(port, self._args, self._lent)

    def _failed(self, port: Port) -> None:
        take_back(port, self._lent)


_names: Dict[Any, str] = {}


def _function_name(fn: Any) -> str:
    """The C name of a function of the loaded library (cffi's function objects have none)."""
    if not _names:
        for name in dir(lib):
            if name.startswith("affi_"):
                _names[getattr(lib, name)] = name
    return _names.get(fn, "rust function")
