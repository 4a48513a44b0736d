"""``RustCall``: the awaitable an exported Rust function returns.

Calling an exported function only checks and converts its arguments; nothing runs in Rust
until the call is first awaited (or handed to ``gather`` and friends). Then it binds to the
running loop (so ``asyncio.run(f())`` works), spawns the Rust future, and becomes an asyncio
future that the loop's port resolves. A ``RustCall`` is a coroutine in asyncio's eyes
(``asyncio.iscoroutine`` is true) and an ``asyncio.Future`` subclass: ``await`` it, pass it to
``asyncio.run``, ``create_task``, ``ensure_future``, ``gather``, ``wait_for``, ``as_completed``.

Under trio (no asyncio loop running, a trio run in this thread), awaiting a call starts it on
the run's port and parks the trio task until the port reschedules it (see ``_trio``); there
the call is an awaitable only, not an ``asyncio.Future``.

Cancellation: cancelling the task that awaits a ``RustCall`` (``task.cancel()``,
``asyncio.wait_for``, ``asyncio.timeout``, loop shutdown) cancels the Rust task, which drops
its future on its runtime at the next poll. Closing an unawaited ``RustCall`` does nothing:
no Rust work was started.
"""

from __future__ import annotations

import asyncio.tasks
import collections.abc
import contextvars
import os
import sys
import warnings
from asyncio import AbstractEventLoop, CancelledError, Future, _get_running_loop, get_running_loop
from typing import TYPE_CHECKING, Any, Callable, Generator, List, Optional, Tuple, TypeVar

from . import _blocking
from ._errors import SHUT_DOWN, ClosedError, ShutDownError, status_error
from ._port import Port, trio_host
from ._pystream import PyStreamArg
from ._runtime import on_main_thread, state

if TYPE_CHECKING:
    from ._library import Library

T = TypeVar("T")


#: Stages of a call: not started; started (its Future part is live); spent (finished on its
#: first step when awaited directly, the eager path: its outcome is kept in ``_outcome``, and
#: it has no Future part); waiting under trio (``_driver`` waits, see ``_trio``; no Future
#: part either, and spent once it finishes).
_NEW, _STARTED, _SPENT, _TRIO = 0, 1, 2, 3
_NOT_A_FUTURE = (
    "this RustCall finished on its first step when awaited and has no future part; await it "
    "again for its outcome"
)
_ONE_AWAITER = "this RustCall is awaited by another trio task already: under trio, await it once"
_init_future = Future.__init__
_cancel_future = Future.cancel
_future_loop = Future.get_loop


class RustCall(Future[T]):
    """An awaitable call of an exported Rust function.

    It is a coroutine in asyncio's eyes: ``await`` it, or pass it to ``asyncio.run``,
    ``create_task`` or ``ensure_future`` (which wrap it in a Task, as any coroutine;
    ``asyncio.wait`` takes those Tasks). ``gather`` uses it as a future, without a Task (on
    Python 3.10+). Once started it is also an ``asyncio.Future`` of the call. Inspecting it
    (``asyncio.isfuture``) never starts it.

    Until it starts it is not bound to any loop, and its future methods other than
    ``get_loop``, ``add_done_callback`` and ``cancel`` (which start it on the running loop, or
    cancel it unstarted) are not available. Like a future, it can be awaited again for the
    same outcome. Awaited directly, a call whose Rust future is ready on its first poll
    delivers its value at once and never gets a Future part.

    Thread safety: use it on one event loop; the Rust future runs on its runtime's threads and
    reports back to that loop only.

    ``fn`` is a function of ``library`` with the exported-function shape
    ``int64_t fn(uint64_t port, uint64_t token, *args)``; the call runs on that library's port
    of the loop.
    """

    __slots__ = (
        "_args",
        "_blocking",
        "_driver",
        "_fn",
        "_library",
        "_outcome",
        "_port",
        "_stage",
        "_task",
        "_token",
    )

    def __init__(self, library: Library, fn: Callable[..., int], args: Tuple[Any, ...]) -> None:
        # The asyncio.Future part is initialised when the call starts, on the running loop.
        self._library = library
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
        if stage == _TRIO:  # trio resumes its task with send(); this is a second awaiter
            raise RuntimeError(_ONE_AWAITER)
        if not self.done():
            self._blocking = True
            return self
        raise StopIteration(self.result())

    def send(self, value: None) -> Any:
        """Coroutine protocol: resume (asyncio sends ``None``, trio an outcome)."""
        if self._stage == _TRIO:
            return self._drive(self._driver.send, value)
        if value is not None and self._stage == _NEW:
            raise TypeError("can't send non-None value to a just-started RustCall")
        return self.__next__()

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        """Coroutine protocol: an exception (usually ``CancelledError``) delivered while
        waiting. Cancels the Rust task if it is still running, then raises it."""
        if val is None:
            val = typ() if isinstance(typ, type) else typ
        if tb is not None:
            val = val.with_traceback(tb)
        if self._stage == _TRIO:
            return self._drive(self._driver.throw, val)
        self._abandon()
        raise val

    def close(self) -> None:
        """Coroutine protocol: cancels the Rust task if it is still running."""
        if self._stage == _TRIO:
            self._driver.close()
            self._settle(False, GeneratorExit())
        self._abandon()

    # --- the future protocol -----------------------------------------------------------------

    @property  # type: ignore[override]
    def _asyncio_future_blocking(self) -> Optional[bool]:
        # asyncio.isfuture() reads this: inspecting a call must not start it. Until it starts
        # (and after it finished without a Future part) it is a coroutine to asyncio, which
        # wraps it in a Task (ensure_future, gather, wait_for, ...) to run it.
        # One exception keeps gather fast: gather only adds a done callback to what it is
        # given, so to gather the call is a future (not blocking), and it starts when gather
        # asks for its loop or adds the callback, without a Task per call.
        if self._stage != _STARTED:
            if self._stage == _NEW and _get_running_loop() is not None and _read_by_gather():
                return False
            return None
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
        if context is None:  # the context current now, as for any future (None is not "unset")
            super().add_done_callback(fn)
        else:
            super().add_done_callback(fn, context=context)

    def cancel(self, msg: Any = None) -> bool:
        """Cancels the call: the Rust task, if it still runs, drops its future."""
        stage = self._stage
        if stage == _SPENT:
            return False
        if stage == _TRIO:
            return bool(self._trio.cancel(self, msg))
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

    # --- from synchronous code ----------------------------------------------------------------

    def wait(self, timeout: Optional[float] = None) -> T:
        """Runs the call to completion from synchronous code and returns its value: the same
        Rust future on the same runtime as ``await call``, with no event loop. The GIL is
        released while Rust works, so other Python threads run. Call it from scripts, threads
        and WSGI handlers; inside a coroutine, ``await`` the call instead.

        Waiting a call again gives the same outcome; a call awaited on a loop cannot be waited.

        :param timeout: seconds to wait at most; then the Rust task is cancelled.
        :raises RuntimeError: an event loop runs in this thread (blocking would stall it); or
            the call was awaited already.
        :raises TypeError: the call lends Python callables or iterators to Rust, which need an
            event loop to run.
        :raises TimeoutError: ``timeout`` passed; the Rust future was dropped.
        :raises KeyboardInterrupt: Ctrl-C while waiting (noticed within
            ``asyncffi._blocking.SLICE`` seconds); the Rust future was dropped.
        :raises Error: what awaiting the call would raise (``RustError``, ``RustPanic``, ...).
        """
        stage = self._stage
        if stage == _SPENT:
            ok, value = self._outcome
            if ok:
                return value  # type: ignore[no-any-return]
            raise value
        name = self._library.python_name(self._fn)
        if stage != _NEW:
            raise RuntimeError(f"this call of {name} runs on an event loop: await it there")
        _blocking.refuse_in_loop(f"{name}(...).wait()", f"await {name}(...)")
        self._refuse_blocking(name)
        args, self._args = self._args, ()
        self._stage = _SPENT
        try:
            value = _blocking.call(self._library, self._fn, args, timeout)
        except BaseException as exc:
            # Waiting again raises it again; an interrupt is not raised twice.
            kept = exc if isinstance(exc, Exception) else ClosedError("the call was interrupted")
            self._outcome = (False, kept)
            raise
        self._outcome = (True, value)
        return value  # type: ignore[no-any-return]

    def _refuse_blocking(self, name: str) -> None:
        """Raises if the call cannot run without an event loop."""

    # --- starting the call -------------------------------------------------------------------

    def _start(self, as_future: bool) -> Any:
        """Starts the Rust call on the running loop. Returns the call itself (a pending
        future) to wait on; a call ready on its first poll raises ``StopIteration`` with its
        value (awaited directly), or is returned as a done future (``as_future``)."""
        loop = _get_running_loop()
        if loop is None:
            return self._start_without_loop(as_future)
        try:
            port = self._library.current_port(loop)
        except ShutDownError as exc:
            self._args = ()
            if state.shut_down and not on_main_thread():
                return self._never(loop)
            return self._fail(loop, exc, as_future)
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
                        if _closed_at_exit(exc):
                            return self._never(loop)
                        self._outcome = (False, exc)
                        raise
                    self._outcome = (True, value)
                    raise StopIteration(value)
                self._stage = _STARTED
                _init_future(self, loop=loop)
                try:
                    self.set_result(port.take_inline(token))
                except CancelledError as exc:
                    _cancel_future(self, *exc.args[:1])
                except Exception as exc:
                    if _closed_at_exit(exc):
                        self._blocking = True
                        return self  # pending for good, as in ``_never``
                    self.set_exception(exc)
                return self
            self._failed(port)
            if not state.shut_down:
                return self._fail(loop, status_error(task, port.lib), as_future)
            if not on_main_thread():
                return self._never(loop)
            return self._fail(loop, ShutDownError(SHUT_DOWN), as_future)
        self._stage = _STARTED
        _init_future(self, loop=loop)
        port.pending[token] = self
        self._port = port
        self._token = token
        self._task = task
        self._blocking = True
        return self

    def _start_without_loop(self, as_future: bool) -> Any:
        """No asyncio loop runs here: awaited in a trio run, the call runs the trio way
        (``_trio.start``, then ``_trio.wait``); anything else raises asyncio's "no running event
        loop"."""
        host = trio_host()
        if host is None:
            get_running_loop()  # raises
        if as_future:
            raise RuntimeError(
                "a RustCall is not an asyncio future under trio (no running asyncio loop): "
                "await it instead"
            )
        try:
            waiter, value = self._trio.start(self, host)
        except BaseException as exc:
            self._settle(False, exc)
            raise
        if waiter is None:  # ready on its first poll
            self._settle(True, value)
            raise StopIteration(value)
        self._stage = _TRIO
        self._driver = self._trio.wait(self, waiter)
        return self._drive(self._driver.send, None)

    @property
    def _trio(self) -> Any:
        return sys.modules["asyncffi._trio"]  # imported by trio_host(), which found the run

    def _drive(self, step: Callable[[Any], Any], arg: Any) -> Any:
        """One step of the call's trio driver; its end is the call's outcome."""
        try:
            return step(arg)
        except StopIteration as stop:
            self._settle(True, stop.value)
            raise
        except BaseException as exc:
            self._settle(False, exc)
            raise

    def _settle(self, ok: bool, value: Any) -> None:
        """The trio driver is done: awaiting the call again gives its outcome, as on asyncio;
        a cancellation (trio's ``Cancelled``, an interrupt) is kept as a ``ClosedError``, never
        raised again outside the cancel scope it belongs to."""
        self._stage = _SPENT
        self._driver = None
        if not ok and not isinstance(value, Exception):
            value = ClosedError("the call was cancelled")
        self._outcome = (ok, value)

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
        """After shutdown, in a daemon thread (which the exiting interpreter is about to
        stop): the call waits, like everything else in that thread, and raises nothing that
        would be logged (an error logged by a daemon thread at exit can deadlock the exit in
        ``logging``)."""
        self._stage = _STARTED
        self._args = ()
        _init_future(self, loop=loop)
        self._blocking = True
        return self

    def _abandon(self) -> None:
        """Cancels the Rust task if it still runs, and the Future part if still pending (for
        anyone else waiting on the call)."""
        self._cancel_rust()
        # Not on a closed loop (a task awaiting the call collected after loop.close()): the
        # Rust task is gone with the port, and a cancel would only fail to schedule callbacks.
        if self._stage == _STARTED and not self.done() and not _future_loop(self).is_closed():
            _cancel_future(self)

    def _cancel_rust(self) -> None:
        port = self._port
        if port is not None and port.pending.pop(self._token, None) is not None:
            port.lib.affi_task_cancel(self._task)

    @property
    def __name__(self) -> str:
        """The exported C function's name (asyncio shows it in task reprs)."""
        return self._library.function_name(self._fn)

    def __repr__(self) -> str:
        name = self.__name__
        stage = self._stage
        if stage == _NEW:
            where = "not started"
        elif stage == _SPENT or (stage == _STARTED and self.done()):
            where = "done"
        else:
            where = f"running as task {self._task:#x}"
        return f"<RustCall {name} {where}>"


def _closed_at_exit(exc: BaseException) -> bool:
    """Whether ``exc`` is the exit closing the port of a daemon thread's call between its
    start and the take of its inline outcome: the call then waits silently, like every call
    that thread starts after the exit hook."""
    return type(exc) is ClosedError and state.shut_down and not on_main_thread()


collections.abc.Coroutine.register(RustCall)

_future_del = Future.__del__


def _del_in_debug_mode(call: RustCall[Any]) -> None:
    """``RustCall.__del__`` in asyncio's debug mode: warns about a call that was never
    awaited (nothing ran in Rust), as Python does for a coroutine; then the future's own
    finalizer reports an exception that was never retrieved."""
    if getattr(call, "_stage", _SPENT) == _NEW:
        warnings.warn(f"RustCall {call.__name__} was never awaited", RuntimeWarning, 2, call)
    _future_del(call)


if sys.flags.dev_mode or os.environ.get("PYTHONASYNCIODEBUG"):
    # Only then: a Python-level finalizer would cost every call.
    RustCall.__del__ = _del_in_debug_mode  # type: ignore[assignment,method-assign]


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

    def _refuse_blocking(self, name: str) -> None:
        raise TypeError(
            f"{name}(...).wait(): the call passes Python callables or iterators to Rust, which "
            f"need an event loop to run them; use `await {name}(...)` in a coroutine (e.g. "
            "asyncio.run)"
        )


_GATHER = asyncio.tasks.gather.__code__


def _read_by_gather() -> bool:
    """Whether ``asyncio.gather`` is asking, through ``isfuture``, whether a call is a future:
    seen from here (frame 0), frame 1 is the property, 2 ``isfuture``, 3 ``_ensure_future``
    (``ensure_future`` on 3.12) and 4 ``gather``, on 3.10 to 3.13. Any other shape is not
    gather: the call gets a Task."""
    try:
        return sys._getframe(4).f_code is _GATHER
    except ValueError:  # a shallower stack
        return False
