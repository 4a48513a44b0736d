"""``RustCall``: the awaitable an exported Rust function returns.

Calling an exported function only checks and converts its arguments; nothing runs in Rust
until the call is first awaited (or handed to ``gather`` and friends). Then it binds to the
running loop (so ``asyncio.run(f())`` works), spawns the Rust future, and becomes an asyncio
future that the loop's port resolves. A ``RustCall`` is a coroutine in asyncio's eyes
(``asyncio.iscoroutine`` is true) and an ``asyncio.Future`` subclass: ``await`` it, pass it to
``asyncio.run``, ``create_task``, ``gather``, ``wait_for``, ``as_completed``.

Cancellation: cancelling the task that awaits a ``RustCall`` (``task.cancel()``,
``asyncio.wait_for``, ``asyncio.timeout``, loop shutdown) cancels the Rust task, which drops
its future on its runtime at the next poll. Closing an unawaited ``RustCall`` does nothing:
no Rust work was started.
"""

from __future__ import annotations

import collections.abc
import contextvars
from asyncio import AbstractEventLoop, CancelledError, Future, _get_running_loop, get_running_loop
from typing import Any, Callable, Dict, Generator, List, Optional, Tuple, TypeVar

from ._errors import status_error
from ._loader import lib
from ._port import Port, ShutDownError, current_port
from ._pystream import PyStreamArg
from ._runtime import state

T = TypeVar("T")

_cancel = lib.affi_task_cancel


#: Stages of a call: not started; started (its Future part is live); spent (finished on its
#: first step when awaited directly, the eager path: its outcome is kept in ``_outcome``, and
#: it has no Future part).
_NEW, _STARTED, _SPENT = 0, 1, 2
_NOT_A_FUTURE = (
    "this RustCall finished on its first step when awaited and has no future part; await it "
    "again for its outcome"
)
_init_future = Future.__init__
_cancel_future = Future.cancel


class RustCall(Future[T]):
    """An awaitable call of an exported Rust function.

    It is a coroutine in asyncio's eyes: ``await`` it, or pass it to ``asyncio.run`` or
    ``create_task``. Inside a running loop it is also an ``asyncio.Future`` of the call, so
    ``ensure_future``, ``gather``, ``wait_for``, ``shield`` and ``as_completed`` use it as it is,
    without wrapping it in a Task (on Python 3.10+; they recognise a future by reading
    ``_asyncio_future_blocking``, and that read starts the call, as creating a Task would).
    ``asyncio.wait`` refuses anything asyncio counts as a coroutine: give it
    ``create_task(call)``.

    Until it starts it is not bound to any loop, and its future methods other than
    ``get_loop``, ``add_done_callback`` and ``cancel`` (which start it, or cancel it unstarted)
    are not available. Like a future, it can be awaited again for the same outcome. Awaited
    directly, a call whose Rust future is ready on its first poll delivers its value at once
    and never gets a Future part.

    Thread safety: use it on one event loop; the Rust future runs on its runtime's threads and
    reports back to that loop only.
    """

    __slots__ = ("_args", "_blocking", "_fn", "_outcome", "_port", "_stage", "_task", "_token")

    def __init__(self, fn: Callable[..., int], args: Tuple[Any, ...]) -> None:
        # The asyncio.Future part is initialised when the call starts, on the running loop.
        self._fn = fn
        self._args = args
        self._stage = _NEW
        self._blocking = False
        self._port: Optional[Port] = None
        self._token = 0
        self._task = 0
        self._outcome: Tuple[bool, Any] = (False, None)

    # --- the coroutine protocol --------------------------------------------------------------

    def __await__(self) -> Generator[Any, None, T]:
        return self

    def __iter__(self) -> RustCall[T]:
        return self

    def __next__(self) -> Any:
        stage = self._stage
        if stage == _NEW:
            return self._start(False)
        if stage == _SPENT:  # awaited again: the same outcome, as for a future
            ok, value = self._outcome
            if ok:
                raise StopIteration(value)
            raise value
        if not self.done():
            self._blocking = True
            return self
        raise StopIteration(self.result())

    def send(self, value: None) -> Any:
        """Coroutine protocol: resume (asyncio sends ``None``)."""
        if value is not None and self._stage == _NEW:
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

    # --- the future protocol -----------------------------------------------------------------

    @property  # type: ignore[override]
    def _asyncio_future_blocking(self) -> Optional[bool]:
        stage = self._stage
        if stage == _NEW:
            if _get_running_loop() is None:
                return None  # not a future here: asyncio wraps it in a Task when it runs
            self._start(True)
        elif stage == _SPENT:
            return None  # finished without a Future part: asyncio awaits it as a coroutine
        return self._blocking

    @_asyncio_future_blocking.setter
    def _asyncio_future_blocking(self, value: bool) -> None:
        self._blocking = value

    def get_loop(self) -> AbstractEventLoop:
        """The loop the call runs on; starts it on the running loop if it has not started."""
        if self._stage == _NEW:
            self._start(True)
        elif self._stage == _SPENT:
            raise RuntimeError(_NOT_A_FUTURE)
        return super().get_loop()

    def add_done_callback(
        self, fn: Callable[[RustCall[T]], object], *, context: Optional[contextvars.Context] = None
    ) -> None:
        """Calls ``fn(call)`` when the call is done; starts it on the running loop if it has
        not started."""
        if self._stage == _NEW:
            self._start(True)
        elif self._stage == _SPENT:
            raise RuntimeError(_NOT_A_FUTURE)
        super().add_done_callback(fn, context=context)

    def cancel(self, msg: Any = None) -> bool:
        """Cancels the call: the Rust task, if it still runs, drops its future."""
        stage = self._stage
        if stage == _SPENT:
            return False
        if stage == _NEW:  # never started: nothing runs in Rust
            self._args = ()
            loop = _get_running_loop()
            if loop is None:  # no loop to bind the Future part to: awaiting it raises
                self._stage = _SPENT
                self._outcome = (False, CancelledError())
                return True
            self._stage = _STARTED
            _init_future(self, loop=loop)
        elif self.done():
            return False
        self._cancel_rust()
        return _cancel_future(self, msg)

    # --- starting the call -------------------------------------------------------------------

    def _start(self, as_future: bool) -> Any:
        """Starts the Rust call on the running loop. Returns the call itself (a pending
        future) to wait on; a call ready on its first poll raises ``StopIteration`` with its
        value (awaited directly), or is returned as a done future (``as_future``)."""
        loop = get_running_loop()
        try:
            port = current_port(loop)
        except ShutDownError:
            return self._never(loop)
        token = next(port.tokens)
        try:
            task = self._fn(port.id, token, *self._prepare(port))
        except Exception as exc:  # cffi refused an argument
            self._failed(port)
            self._args = ()
            return self._fail(loop, exc, as_future)
        self._args = ()
        if task <= 0:
            if task == 0:  # ready on its first poll: the outcome is here already
                if not as_future:
                    self._stage = _SPENT
                    try:
                        value = port.take_inline(token)
                    except BaseException as exc:
                        self._outcome = (False, exc)
                        raise
                    self._outcome = (True, value)
                    raise StopIteration(value)
                self._stage = _STARTED
                _init_future(self, loop=loop)
                try:
                    self.set_result(port.take_inline(token))
                except CancelledError:
                    _cancel_future(self)
                except Exception as exc:
                    self.set_exception(exc)
                return self
            self._failed(port)
            if state.shut_down:
                return self._never(loop)
            return self._fail(loop, status_error(task), as_future)
        self._stage = _STARTED
        _init_future(self, loop=loop)
        port.pending[token] = self
        self._port = port
        self._token = token
        self._task = task
        self._blocking = True
        return self

    def _fail(self, loop: AbstractEventLoop, error: Exception, as_future: bool) -> RustCall[T]:
        """The call could not start: raises ``error`` (awaited directly; awaiting again raises
        it again), or returns the call as a future that failed with it."""
        if not as_future:
            self._stage = _SPENT
            self._outcome = (False, error)
            raise error
        self._stage = _STARTED
        _init_future(self, loop=loop)
        self.set_exception(error)
        return self

    def _prepare(self, port: Port) -> Tuple[Any, ...]:
        """The C arguments of the call on ``port``."""
        return self._args

    def _failed(self, port: Port) -> None:
        """The C function refused the call (a negative status)."""

    def _never(self, loop: Any) -> RustCall[T]:
        """After shutdown (interpreter exit) a call never completes, like everything else in
        the daemon threads still running then; it raises nothing that would print."""
        self._stage = _STARTED
        self._args = ()
        _init_future(self, loop=loop)
        self._blocking = True
        return self

    def _abandon(self) -> None:
        """Cancels the Rust task if it still runs, and the Future part if still pending (for
        anyone else waiting on the call)."""
        self._cancel_rust()
        if self._stage == _STARTED and not self.done():
            _cancel_future(self)

    def _cancel_rust(self) -> None:
        port = self._port
        if port is not None and port.pending.pop(self._token, None) is not None:
            _cancel(self._task)

    @property
    def __name__(self) -> str:
        """The exported C function's name (asyncio shows it in task reprs)."""
        return _function_name(self._fn)

    def __repr__(self) -> str:
        name = self.__name__
        stage = self._stage
        if stage == _NEW:
            where = "not started"
        elif stage == _SPENT or self.done():
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
