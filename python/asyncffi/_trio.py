"""Trio support: the host a trio run gives its port, and awaiting calls the trio way.

Imported only when trio is (the shared modules ask ``_port.trio_host()``, which looks for
``trio`` in ``sys.modules`` before importing this module), and only on a thread where no
asyncio loop runs: asyncio is always asked first, so its path costs nothing more.

A port is made for an asyncio loop; under trio it is given a ``TrioHost``, one per run, which
offers the few loop methods the port, the pumps and the streams use, each the trio way:

- ``call_soon`` and ``call_soon_threadsafe`` go through ``TrioToken.run_sync_soon``: the
  ``threadsafe`` wake-up of a port is a ``run_sync_soon(port.drain)`` from the notifier thread,
  so the drain runs on the trio thread;
- ``add_reader`` (the ``fd`` wake) is a system task waiting with ``wait_readable`` on the
  port's eventfd and draining when it is readable;
- ``create_future`` gives a ``Waiter`` that a trio task parks on with
  ``wait_task_rescheduled`` and that the drain resolves with ``reschedule``;
- ``create_task`` (a Python async callable called by Rust, a pump feeding an iterator to Rust)
  runs the awaitable as a trio system task, in a copy of the caller's contextvars context;
  cancelling it (Rust dropped the call) cancels its cancel scope;
- the end of the run closes the port (a system task, cancelled when the main task is done,
  closes it on its way out): the Rust tasks still bound to it are cancelled, as at
  ``loop.close()``.

A ``RustCall`` awaited under trio is started on the run's port by ``start`` (a call ready on its
first poll is done there), and ``wait`` parks the task; the drain reschedules it with the
outcome. Cancelling the task (a cancel scope,
``move_on_after``, a nursery) calls the abort function, which cancels the Rust task (its future
is dropped on its runtime), as cancelling an asyncio task does.
"""

from __future__ import annotations

import contextvars
import logging
import signal
import threading
from asyncio import CancelledError, InvalidStateError
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple, cast

import outcome
import trio

from ._errors import SHUT_DOWN, ClosedError, ShutDownError, status_error
from ._runtime import on_main_thread, state

if TYPE_CHECKING:
    from ._call import RustCall
    from ._library import Library
    from ._port import Port

_logger = logging.getLogger("asyncffi")

#: The host of the current trio run.
_HOST: trio.lowlevel.RunVar[TrioHost] = trio.lowlevel.RunVar("asyncffi_host")

#: What an awaiting task that was woken by ``Waiter.cancel`` raises (trio has no
#: ``CancelledError``; trio's own cancellation goes through cancel scopes).
_CANCELLED = "the call was cancelled"


def current_host() -> Optional[TrioHost]:
    """The host of the trio run on this thread, made on first use; None outside a trio run.

    :raises RuntimeError: the run is shutting down (its system nursery is closed).
    """
    try:
        return _HOST.get()
    except LookupError:
        pass
    except RuntimeError:  # not in a trio run
        return None
    host = TrioHost(trio.lowlevel.current_trio_token())
    trio.lowlevel.spawn_system_task(host._guard, name="asyncffi port guard")
    _HOST.set(host)
    return host


def current_port(host: TrioHost, library: Library) -> Port:
    """The port of ``library`` for the run ``host`` belongs to, opened on first use (see
    ``Library.current_port``: a port per library and per run, as per library and per loop)."""
    return library.current_port(cast(Any, host))


class TrioHost:
    """The loop methods a port uses, for one trio run. Used on the run's thread, except
    ``call_soon_threadsafe`` (any thread) and ``is_closed`` (read at exit)."""

    #: Read by the pumps: under trio nothing is stepped outside a trio task.
    is_trio = True

    def __init__(self, token: trio.lowlevel.TrioToken) -> None:
        self.token = token
        self._stopping = False
        self._closed = False
        self._readers: Dict[int, trio.CancelScope] = {}

    async def _guard(self) -> None:
        """A system task: sleeps until the run ends (system tasks are cancelled when the main
        task is done), then closes the run's ports, through the close hooks they installed, as
        ``loop.close()`` does."""
        try:
            await trio.sleep_forever()
        finally:
            self._stopping = True  # not running from here on: the hooks close their ports
            try:
                self.close()
            finally:
                self._closed = True

    # --- what the port and the pumps use -----------------------------------------------------

    def is_closed(self) -> bool:
        return self._closed

    def is_running(self) -> bool:
        return not (self._stopping or self._closed)

    def get_debug(self) -> bool:
        return False

    def close(self) -> None:
        """Called by the run's end; each port opened on this host wraps it (see
        ``_port._hook_close``) to close itself first."""

    def call_soon(self, callback: Callable[..., Any], *args: Any, context: Any = None) -> None:
        """Runs ``callback(*args)`` soon on the trio thread. An exception it raises is logged
        (``run_sync_soon`` would crash the run with it); a ``KeyboardInterrupt`` or
        ``SystemExit`` goes on to trio, which ends the run with it."""
        self.token.run_sync_soon(_run_callback, callback, args, context)

    def call_soon_threadsafe(self, callback: Callable[..., Any], *args: Any) -> None:
        """From any thread. :raises RuntimeError: the run is over (``RunFinishedError``)."""
        self.token.run_sync_soon(_run_callback, callback, args, None)

    def create_future(self) -> Waiter:
        return Waiter()

    def create_task(self, coro: Any) -> TrioTask:
        return TrioTask(self, coro)

    def call_exception_handler(self, context: Dict[str, Any]) -> None:
        """Logs an error no caller can receive (asyncio's default handler logs it too)."""
        exc = context.get("exception")
        exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
        _logger.error("%s", context.get("message", "error in asyncffi"), exc_info=exc_info)

    def add_reader(self, fd: int, callback: Callable[[], Any]) -> None:
        """The ``fd`` wake: a system task calls ``callback`` whenever ``fd`` is readable."""
        scope = trio.CancelScope()
        self._readers[fd] = scope
        trio.lowlevel.spawn_system_task(self._watch, fd, callback, scope, name="asyncffi fd wake")

    def remove_reader(self, fd: int) -> bool:
        scope = self._readers.pop(fd, None)
        if scope is None:
            return False
        scope.cancel()
        trio.lowlevel.notify_closing(fd)  # the port closes the fd once its tasks are gone
        return True

    async def _watch(self, fd: int, callback: Callable[[], Any], scope: trio.CancelScope) -> None:
        with scope:
            try:
                while True:
                    await trio.lowlevel.wait_readable(fd)
                    _run_callback(callback, (), None)
            except trio.ClosedResourceError:
                pass

    def __repr__(self) -> str:
        return f"<asyncffi TrioHost {'closed' if self._closed else 'running'}>"


def _run_callback(callback: Callable[..., Any], args: Any, context: Any) -> None:
    try:
        if context is None:
            callback(*args)
        else:
            context.run(callback, *args)
    except Exception as exc:
        _logger.error("exception in an asyncffi callback under trio", exc_info=exc)
    except KeyboardInterrupt as exc:
        _pass_on(exc)


def _pass_on(exc: BaseException) -> None:
    """A ``KeyboardInterrupt`` raised by Python code that Rust called (or one asyncffi raises
    again, see ``Port._start_call``) goes on as Ctrl-C would: trio's SIGINT handler delivers it
    to the main task, and ``trio.run`` raises it. Anything else, or with no Python handler for
    SIGINT, is raised here, and trio ends the run with ``TrioInternalError`` (its rule for an
    exception escaping a system task or a ``run_sync_soon`` callback)."""
    if isinstance(exc, KeyboardInterrupt) and threading.current_thread() is threading.main_thread():
        if callable(signal.getsignal(signal.SIGINT)):
            signal.raise_signal(signal.SIGINT)
            return
    raise exc


def _only_cancelled(exc: BaseException) -> bool:
    """Whether ``exc`` is trio's ``Cancelled``, or a group (a nursery's) of nothing else."""
    inner = getattr(exc, "exceptions", None)
    if inner is not None and isinstance(exc, BaseException) and not isinstance(exc, Exception):
        return bool(inner) and all(_only_cancelled(e) for e in inner)
    return isinstance(exc, trio.Cancelled)


class Waiter:
    """What a trio task waits on: a call's outcome, a stream's next items, a pump's credit.
    ``drain`` resolves it with the future interface (``set_result``, ``set_exception``) and
    the waiting task, parked in ``wait_task_rescheduled``, is rescheduled with the outcome.
    Awaited by one task at most."""

    __slots__ = ("outcome", "task")

    def __init__(self) -> None:
        self.outcome: Optional[outcome.Outcome[Any]] = None
        self.task: Optional[trio.lowlevel.Task] = None

    def done(self) -> bool:
        return self.outcome is not None

    def cancelled(self) -> bool:
        return False

    def set_result(self, result: Any, /) -> None:
        self._set(outcome.Value(result))

    def set_exception(self, exception: BaseException, /) -> None:
        self._set(outcome.Error(exception))

    def cancel(self, msg: Any = None) -> bool:
        """Wakes the waiting task with ``ClosedError``: under trio a cancellation that does not
        come from a cancel scope is an error of the call."""
        if self.outcome is not None:
            return False
        self._set(outcome.Error(ClosedError(_CANCELLED if msg is None else f"{_CANCELLED}: {msg}")))
        return True

    def exception(self) -> Optional[BaseException]:
        o = self.outcome
        return o.error if isinstance(o, outcome.Error) else None

    def result(self) -> Any:
        o = self.outcome
        if isinstance(o, outcome.Error):
            raise o.error
        return cast(Any, o).value if o is not None else None

    def _set(self, result: outcome.Outcome[Any]) -> None:
        if self.outcome is not None:
            raise InvalidStateError("the waiter is done already")
        self.outcome = result
        task = self.task
        if task is not None:
            self.task = None
            trio.lowlevel.reschedule(task, result)

    def _abort(self, raise_cancel: Any) -> trio.lowlevel.Abort:
        self.task = None
        return trio.lowlevel.Abort.SUCCEEDED

    async def wait(self) -> Any:
        """Waits for the outcome: its value, or raises its error."""
        if self.outcome is None:
            self.task = trio.lowlevel.current_task()
            return await trio.lowlevel.wait_task_rescheduled(self._abort)
        return self.result()

    def __await__(self) -> Any:
        return self.wait().__await__()


class TrioTask:
    """An awaitable run as a trio system task, with the part of ``asyncio.Task``'s interface
    the port and the pumps use (``cancel``, ``done``, ``exception``, done callbacks). A
    cancelled task's ``exception()`` raises ``asyncio.CancelledError``, as asyncio's does, so
    the port answers Rust the same way on both."""

    __slots__ = (
        "_callbacks",
        "_coro",
        "_error",
        "_host",
        "_log_destroy_pending",
        "_result",
        "_scope",
        "_state",
    )

    _PENDING, _OK, _FAILED, _CANCELLED = 0, 1, 2, 3
    #: Read by ``asyncio.ensure_future`` before Python 3.10.
    _source_traceback = None

    def __init__(self, host: TrioHost, coro: Any) -> None:
        self._host = host
        self._coro = coro
        self._scope = trio.CancelScope()
        self._state = self._PENDING
        self._result: Any = None
        self._error: Optional[BaseException] = None
        self._callbacks: List[Callable[[TrioTask], Any]] = []
        self._log_destroy_pending = True
        name = getattr(coro, "__qualname__", None) or type(coro).__name__
        trio.lowlevel.spawn_system_task(self._run, name=name, context=contextvars.copy_context())

    async def _run(self) -> None:
        error: Optional[BaseException] = None
        try:
            if self._scope.cancel_called:
                # Cancelled before its first step: as for an asyncio task, its body never runs.
                self._coro.close()
            else:
                with self._scope:
                    self._result = await self._coro
                    self._state = self._OK
        except BaseException as exc:
            if _only_cancelled(exc):  # the run is ending: the system nursery is cancelled
                return
            self._state = self._FAILED
            self._error = exc
            if not isinstance(exc, Exception):
                error = exc  # KeyboardInterrupt, SystemExit: they go on (see _pass_on)
        finally:
            if self._state == self._PENDING:  # cancelled (our scope caught it, or the run's)
                self._state = self._CANCELLED
            callbacks, self._callbacks = self._callbacks, []
            for callback in callbacks:
                _run_callback(callback, (self,), None)
        if error is not None:
            _pass_on(error)

    def get_coro(self) -> Any:
        return self._coro

    def done(self) -> bool:
        return self._state != self._PENDING

    def cancelled(self) -> bool:
        return self._state == self._CANCELLED

    def cancel(self, msg: Any = None) -> bool:
        if self._state != self._PENDING:
            return False
        self._scope.cancel()
        return True

    def exception(self) -> Optional[BaseException]:
        if self._state == self._CANCELLED:
            raise CancelledError()
        if self._state == self._PENDING:
            raise InvalidStateError("the task is not done")
        return self._error

    def result(self) -> Any:
        error = self.exception()
        if error is not None:
            raise error
        return self._result

    def add_done_callback(self, fn: Callable[[TrioTask], Any], **_: Any) -> None:
        if self._state == self._PENDING:
            self._callbacks.append(fn)
        else:
            self._host.call_soon(fn, self)


# --- RustCall under trio -------------------------------------------------------------------


def start(call: RustCall[Any], host: TrioHost) -> Tuple[Optional[Waiter], Any]:
    """Starts ``call`` on the port of ``host``'s run. Returns ``(None, value)`` for a call
    ready on its first poll (no wait, as on asyncio), else ``(waiter, None)``: the waiter the
    drain resolves with the outcome, for ``wait``.

    :raises ShutDownError: asyncffi has shut down (on the main thread; a daemon thread at exit
        gets a waiter nothing resolves, and waits silently, as on asyncio).
    """
    try:
        port = current_port(host, call._library)
    except ShutDownError:
        call._args = ()
        if not on_main_thread():
            return Waiter(), None
        raise
    token = next(port.tokens)
    try:
        task = call._fn(port.id, token, *call._prepare(port))
    except Exception:  # cffi refused an argument
        call._failed(port)
        raise
    finally:
        call._args = ()
    if task <= 0:
        if task == 0:  # ready on its first poll
            return None, port.take_inline(token)
        call._failed(port)
        if not state.shut_down:
            raise status_error(task, port.lib)
        if not on_main_thread():
            return Waiter(), None
        raise ShutDownError(SHUT_DOWN)
    waiter = Waiter()
    port.pending[token] = waiter
    call._port = port
    call._token = token
    call._task = task
    return waiter, None


async def wait(call: RustCall[Any], waiter: Waiter) -> Any:
    """Parks the task until the drain reschedules it with the call's outcome; cancelling the
    task (or closing the coroutine) first cancels the Rust task, whose future is then dropped
    on its runtime."""
    waiter.task = trio.lowlevel.current_task()

    def abort(raise_cancel: Any) -> trio.lowlevel.Abort:
        waiter.task = None
        call._cancel_rust()
        return trio.lowlevel.Abort.SUCCEEDED

    try:
        return await trio.lowlevel.wait_task_rescheduled(abort)
    finally:
        call._cancel_rust()  # a no-op once the drain took the outcome


def cancel(call: RustCall[Any], msg: Any) -> bool:
    """``RustCall.cancel()`` under trio: cancels the Rust task and wakes the awaiting task
    with ``ClosedError``."""
    port = call._port
    if port is None:
        return False
    waiter = port.pending.pop(call._token, None)
    if waiter is None:
        return False
    port.lib.affi_task_cancel(call._task)
    return waiter.cancel(msg)
