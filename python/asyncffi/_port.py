"""One completion port per running event loop: where Rust outcomes become future results.

A port is opened lazily by the first call on a loop. Calls register ``token -> future`` in
``pending``; when the Rust port's queue goes from empty to non-empty it wakes the loop, once,
and ``drain`` then resolves every queued future in batches of ``BATCH`` with one C call each.

Wake strategies:

- ``threadsafe``: the Rust notifier thread calls ``_on_wake`` (a cffi callback, created once),
  which schedules ``drain`` with ``loop.call_soon_threadsafe``.
- ``fd``: the port's eventfd is watched with ``loop.add_reader(fd, drain)``; no Python code
  runs off the loop thread. Loops without ``add_reader`` fall back to ``threadsafe``.

Closing the loop closes its port (asyncffi wraps ``loop.close`` on the loops it serves, and a
finalizer covers loops that are garbage-collected unclosed): the Rust tasks bound to it are
cancelled and queued payloads freed.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import itertools
import threading
import weakref
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Protocol, Tuple

from ._errors import ClosedError, RustError, RustPanic, check, exception_fields
from ._loader import ffi, lib
from ._pystream import Pump, PyStreamArg, refuse_pull
from ._runtime import state
from ._values import (
    TAG_BOOL,
    TAG_BYTES,
    TAG_FLOAT,
    TAG_INT,
    TAG_NONE,
    TAG_OBJECT,
    TAG_PACKED,
    TAG_STR,
    bytes_at,
    pack,
    text_at,
    unpack,
    value_args,
)

if TYPE_CHECKING:
    from ._stream import Inbox

#: Completions copied out per drain call.
BATCH = 256
#: Batches drained per turn of the event loop before the rest waits for the next turn.
MAX_BATCHES = 16

OK = lib.AFFI_OUTCOME_OK
ERROR = lib.AFFI_OUTCOME_ERROR
PANIC = lib.AFFI_OUTCOME_PANIC
ITEM = lib.AFFI_OUTCOME_ITEM
ITEMS = lib.AFFI_OUTCOME_ITEMS
REQUEST_CALL = lib.AFFI_REQUEST_CALL
REQUEST_CANCEL = lib.AFFI_REQUEST_CANCEL
REQUEST_RELEASE = lib.AFFI_REQUEST_RELEASE
REQUEST_PULL = lib.AFFI_REQUEST_PULL
REQUEST_POLL = lib.AFFI_REQUEST_POLL

#: Ids of Python objects lent to Rust; unique in the process, never reused.
_object_ids = itertools.count(1)

_drain = lib.affi_port_drain
_release = lib.affi_port_release
_complete = lib.affi_call_complete
_take_inline = lib.affi_port_take_inline
_release_inline = lib.affi_port_release_inline
_poll = lib.affi_task_poll

# Ownership: a loop owns its port (through its close hook, or `_pinned` for loops that take no
# hook); every registry below holds ports weakly. A port holds its pending futures and so its
# loop: an unclosed loop with work in flight is then a reference cycle, which the garbage
# collector frees, and the loop's finalizer closes the Rust port.

#: Open ports by id, for the wake callback.
_ports: weakref.WeakValueDictionary[int, Port] = weakref.WeakValueDictionary()
#: Open ports by loop.
_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, weakref.ref[Port]] = (
    weakref.WeakKeyDictionary()
)
#: Ports of loops that refused the close hook (no instance ``__dict__``): kept until closed.
_pinned: Dict[int, Port] = {}
#: The last port used on this thread (the running loop's, almost always), weakly.
_local = threading.local()


class Waiting(Protocol):
    """What ``drain`` resolves with a call's outcome: an ``asyncio.Future``, or the inbox of a
    stream (whose outcome is its end)."""

    def done(self) -> bool: ...
    def set_result(self, result: Any, /) -> None: ...
    def set_exception(self, exception: BaseException, /) -> None: ...
    def cancel(self) -> bool: ...


class ShutDownError(RuntimeError):
    """asyncffi has shut down (interpreter exit): calls started now never complete."""


class Port:
    """The completion port of one event loop. Used only on that loop's thread, except
    ``close`` (also called by finalizers and at exit)."""

    __slots__ = (
        "__weakref__",
        "_buf",
        "_one",
        "calls",
        "closed",
        "fd",
        "id",
        "loop_ref",
        "objects",
        "pending",
        "streams",
        "tokens",
        "wake",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, wake: str) -> None:
        self.loop_ref = weakref.ref(loop)
        #: What waits for each call's outcome: its future (or a stream's inbox), by token.
        self.pending: Dict[int, Waiting] = {}
        #: The inboxes of the Rust streams read on this loop, by token.
        self.streams: Dict[int, Inbox] = {}
        self.tokens = itertools.count(1)
        #: Python objects Rust holds references to: callables as ``(fn, context)``, and
        #: exceptions raised by calls (so the original can be raised again).
        self.objects: Dict[int, Any] = {}
        #: Python tasks running calls from Rust, by call id.
        self.calls: Dict[int, asyncio.Future[Any]] = {}
        self.closed = False
        self.fd = -1
        self._buf = ffi.new("AffiCompletion[]", BATCH)
        self._one = ffi.new("AffiCompletion[]", 1)
        if wake == "fd":
            port_id = lib.affi_port_open(lib.AFFI_WAKE_FD)
            if port_id < 0:  # no eventfd on this platform
                wake = "threadsafe"
            else:
                self.id = port_id
                self.fd = check(lib.affi_port_fd(port_id))
                try:
                    loop.add_reader(self.fd, self.drain)
                except NotImplementedError:  # e.g. Windows' proactor loop
                    lib.affi_port_close(port_id)
                    self.fd = -1
                    wake = "threadsafe"
        if wake == "threadsafe":
            _install_wake_callback()
            self.id = check(lib.affi_port_open(lib.AFFI_WAKE_THREADSAFE))
        self.wake = wake
        _ports[self.id] = self

    def drain(self) -> None:
        """Resolves the futures of the queued completions. Runs on the loop thread.

        Drains until a drain returns nothing: completions queued while a batch is being
        handled (results of calls it answered, requests, items) do not wake the loop but are
        taken here. At most ``MAX_BATCHES`` batches per turn: when Rust produces faster than
        Python consumes, the rest waits for the next turn (scheduled here, since no wake-up will
        come for it), so other callbacks and timers keep running.
        """
        buf = self._buf
        pid = self.id
        emptied = False
        try:
            for _ in range(MAX_BATCHES):
                n = _drain(pid, buf, BATCH)
                if n <= 0:
                    emptied = True
                    return
                if self._handle(buf, 0, n):
                    _release(pid)
        finally:
            if not emptied:  # Rust counts on a drain that returns nothing: schedule one
                self._drain_later()

    def _handle(self, buf: Any, start: int, n: int) -> bool:
        """Handles completions ``start..n`` of the batch in ``buf``; returns whether they hold
        payloads to release. Interrupted (KeyboardInterrupt), it still handles the rest of the
        batch before the exception goes on: no future of it is left unresolved, no request
        unanswered."""
        pending = self.pending
        streams = self.streams
        held = False
        i = start
        try:
            for i in range(start, n):
                c = buf[i]
                status = c.status
                if status >= ITEM:
                    if status > ITEMS:
                        held = self._request(c, status) or held
                        continue
                    tag = c.tag
                    inbox = streams.get(c.token)
                    if inbox is None:  # the stream was closed: free the items
                        if tag == TAG_OBJECT:
                            lib.affi_object_free(c.int_value)
                        held = held or tag >= TAG_BYTES
                        continue
                    held = held or (TAG_BYTES <= tag != TAG_OBJECT)
                    self._items(inbox, c, status)
                    waiter = inbox.waiter
                    if waiter is not None:
                        inbox.waiter = None
                        if not waiter.done():
                            waiter.set_result(None)
                    continue
                fut = pending.pop(c.token, None)
                tag = c.tag
                if tag >= TAG_BYTES:
                    if tag == TAG_OBJECT:
                        if fut is None:  # abandoned: nobody will wrap the object
                            lib.affi_object_free(c.int_value)
                            continue
                    else:
                        held = True
                if fut is None:
                    continue
                try:
                    if status == OK and tag == TAG_INT:  # the common case, inline
                        fut.set_result(c.int_value)
                        continue
                    ok, value = self._outcome(c)
                    if ok:
                        fut.set_result(value)
                    elif isinstance(value, asyncio.CancelledError):
                        fut.cancel()
                    else:
                        fut.set_exception(value)
                except Exception as exc:
                    # A value Python cannot rebuild fails that call only; a future already
                    # cancelled (its task is being cancelled) just stays so.
                    if not fut.done():
                        fut.set_exception(exc)
        except BaseException:
            try:
                self._handle(buf, i + 1, n)
            finally:
                _release(self.id)
            raise
        return held

    def _drain_later(self) -> None:
        loop = self.loop_ref()
        if loop is not None and not self.closed:
            loop.call_soon(self.drain)

    def _items(self, inbox: Any, c: Any, status: int) -> None:
        """Puts the stream items in ``c`` (a batch, or one item) into ``inbox``; items Python
        cannot rebuild end the stream with that error."""
        try:
            if status == ITEMS:
                inbox.extend(unpack(c.data, c.len))
            else:
                inbox.append(_value(c))
        except Exception as exc:
            inbox.set_exception(exc)

    def _outcome(self, c: Any) -> Tuple[bool, Any]:
        """``(True, value)`` or ``(False, exception)`` for completion ``c``."""
        status = c.status
        if status == OK:
            return True, _value(c)
        if status == ERROR:
            return False, self._error(unpack(c.data, c.len))
        if status == PANIC:
            return False, RustPanic(text_at(c.data, c.len))
        return False, ClosedError("the Rust task was dropped: its runtime shut down")

    def take_inline(self, token: int) -> Any:
        """The outcome of call ``token``, which finished on its first poll (its function
        returned 0): its value, or raises its error. No future, no wake, no thread hop."""
        c = self._one[0]
        check(_take_inline(self.id, token, self._one))
        try:
            ok, value = self._outcome(c)
        finally:
            if c.tag >= TAG_BYTES and c.tag != TAG_OBJECT:
                _release_inline(self.id)
        if ok:
            return value
        raise value

    def _error(self, fields: List[Any]) -> BaseException:
        """The exception for an error outcome: the original Python exception if the error came
        from a call on this port and Rust returned it unchanged, else a ``RustError``."""
        if len(fields) == 3:
            original = self.objects.get(fields[2])
            if isinstance(original, (StopIteration, StopAsyncIteration)):
                # These cannot travel through a future or a coroutine (PEP 479).
                error = RuntimeError(f"{type(original).__name__} raised by a Python callable")
                error.__cause__ = original
                return error
            if isinstance(original, BaseException):
                return original
        return RustError(fields[1], fields[0])

    # --- Rust awaiting Python ----------------------------------------------------------------

    def register(self, fn: Callable[..., Any], context: contextvars.Context) -> int:
        """Lends callable ``fn`` (run in copies of ``context``) to Rust; returns its id."""
        object_id = next(_object_ids)
        self.objects[object_id] = (fn, context)
        return object_id

    def register_stream(self, arg: PyStreamArg) -> int:
        """Lends iterator ``arg`` to Rust; returns its id."""
        object_id = next(_object_ids)
        self.objects[object_id] = Pump(self, object_id, arg)
        return object_id

    def keep(self, exc: BaseException) -> int:
        """Keeps exception ``exc`` (which Rust now holds) so that the original can be raised
        again; returns its id."""
        object_id = next(_object_ids)
        self.objects[object_id] = exc
        return object_id

    def _request(self, c: Any, status: int) -> bool:
        """Handles one request from Rust; returns whether it had a payload to release."""
        if status == REQUEST_CALL:
            self._start_call(c.token, c.int_value, unpack(c.data, c.len))
            return True
        if status == REQUEST_POLL:
            _poll(c.token)
        elif status == REQUEST_PULL:
            pump = self.objects.get(c.int_value)
            if type(pump) is Pump:
                pump.pull(c.token)
            else:  # Rust adopted something else as an iterator: end its stream, never hang
                refuse_pull(c.int_value, pump)
        elif status == REQUEST_CANCEL:
            task = self.calls.pop(c.token, None)
            if task is not None:
                task.cancel()
        elif status == REQUEST_RELEASE:
            released = self.objects.pop(c.int_value, None)
            if type(released) is Pump:
                released.release()
        return False

    def _start_call(self, call_id: int, callable_id: int, args: List[Any]) -> None:
        entry = self.objects.get(callable_id)
        if entry is None:  # cannot happen while Rust holds the callable; answer, never hang
            self._answer_error(call_id, ClosedError("the Python callable was released"))
            return
        fn, context = entry
        run = context.copy().run
        try:
            result = run(fn, *args)
            if not inspect.isawaitable(result):
                self._answer_value(call_id, result)
                return
            task = run(asyncio.ensure_future, result)
        except BaseException as exc:
            self._answer_error(call_id, exc)
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                # KeyboardInterrupt, SystemExit: raise them from the loop, after this batch, so
                # that the rest of the batch is still delivered.
                loop = self.loop_ref()
                if loop is not None:
                    loop.call_soon(_reraise, exc)
            return
        self.calls[call_id] = task
        task.add_done_callback(functools.partial(self._call_done, call_id))

    def _call_done(self, call_id: int, task: asyncio.Future[Any]) -> None:
        exc = None if task.cancelled() else task.exception()  # also marks it retrieved
        if self.calls.pop(call_id, None) is None:
            return  # Rust dropped the call and no longer waits
        if task.cancelled():
            self._answer_error(call_id, asyncio.CancelledError())
        elif exc is not None:
            self._answer_error(call_id, exc)
        else:
            self._answer_value(call_id, task.result())

    def _answer_value(self, call_id: int, value: Any) -> None:
        try:
            args = value_args(value)
        except Exception as exc:
            self._answer_error(call_id, exc)
            return
        # ERR_CLOSED: Rust stopped waiting; nothing to free. 1: drain soon (see _answered).
        self._answered(_complete(self.id, call_id, OK, *args))

    def _answer_error(self, call_id: int, exc: BaseException) -> None:
        """Answers call ``call_id`` with ``exc``; always answers, whatever ``exc`` holds."""
        data = pack(exception_fields(exc))
        object_id = self.keep(exc)
        status = _complete(self.id, call_id, ERROR, TAG_PACKED, object_id, 0.0, data, len(data))
        if status < 0:
            self.objects.pop(object_id, None)  # Rust did not take it
        self._answered(status)

    def _answered(self, status: int) -> None:
        """After an answer: 1 means it resumed a Rust task polled on this loop (the ``loop``
        runtime) and queued work without waking the loop, which drains it here instead, at
        once (an answer given during a drain never returns 1: that drain goes on anyway)."""
        if status == 1 and not self.closed:
            self.drain()

    def close(self) -> None:
        """Closes the port: cancels its Rust tasks and frees what is queued. Idempotent."""
        if self.closed:
            return
        self.closed = True
        _ports.pop(self.id, None)
        _pinned.pop(self.id, None)
        loop = self.loop_ref()
        if loop is not None:
            ref = _by_loop.get(loop)
            if ref is not None and ref() is self:
                del _by_loop[loop]
            if self.fd >= 0 and not loop.is_closed():
                try:
                    loop.remove_reader(self.fd)
                except Exception:  # the loop is going away; the fd is the port's to close
                    pass
        lib.affi_port_close(self.id)
        self.pending.clear()
        self.streams.clear()
        self.calls.clear()
        self.objects.clear()


def current_port(loop: Optional[asyncio.AbstractEventLoop] = None) -> Port:
    """The port of ``loop`` (default: the running loop), opened on first use.

    :raises RuntimeError: no running event loop, or asyncffi cannot run in this process.
    :raises ShutDownError: asyncffi has shut down (the interpreter is exiting).
    """
    if loop is None:
        loop = asyncio.get_running_loop()
    ref: Optional[weakref.ref[Port]] = getattr(_local, "port", None)
    port = ref() if ref is not None else None
    if port is not None and port.loop_ref() is loop and not port.closed:
        return port
    ref = _by_loop.get(loop)
    port = ref() if ref is not None else None
    if port is None or port.closed:
        port = _open(loop)
    _local.port = weakref.ref(port)
    return port


def _open(loop: asyncio.AbstractEventLoop) -> Port:
    with state.lock:
        if state.forked:
            raise RuntimeError(
                "asyncffi cannot run in a process forked from one that used it: its Rust threads "
                "do not survive fork(); start subprocesses with multiprocessing's 'spawn' or "
                "'forkserver' method"
            )
        if state.shut_down:
            raise ShutDownError("asyncffi has shut down: the interpreter is exiting")
        state.ports_opened = True
        wake = state.wake
    if loop.is_closed():
        raise RuntimeError("the event loop is closed")
    port = Port(loop, wake)
    _ports[port.id] = port
    _by_loop[loop] = weakref.ref(port)
    if not _hook_close(loop, port):
        _pinned[port.id] = port
    # Not at exit: the exit hook closes every port at once, from the main thread, whereas this
    # would call remove_reader on loops that other threads may still be running.
    weakref.finalize(loop, _close_port, port.id).atexit = False
    return port


def _close_port(port_id: int) -> None:
    """Finalizer of a collected loop: closes its Rust port (a no-op if already closed)."""
    lib.affi_port_close(port_id)


def _hook_close(loop: asyncio.AbstractEventLoop, port: Port) -> bool:
    """Makes ``loop.close()`` close ``port`` first; returns False if the loop refuses."""
    loop_ref = port.loop_ref
    # An instance-level close someone installed before us is kept; the class's is looked up
    # when needed, so the hook holds no reference to the loop.
    previous = getattr(loop, "__dict__", {}).get("close")

    def close() -> None:
        lp = loop_ref()
        if lp is None:
            return
        if not lp.is_running():
            port.close()
        if previous is not None:
            previous()
        else:
            type(lp).close(lp)

    try:
        loop.close = close  # type: ignore[method-assign]
    except (AttributeError, TypeError):
        return False
    return True


def forget_all() -> None:
    """At exit or after fork: marks every port closed on the Python side (Rust closes them all
    at once at exit; a forked child must not touch them)."""
    for port in list(_ports.values()):
        port.closed = True
        port.pending.clear()
        port.streams.clear()
        port.calls.clear()
        port.objects.clear()
    _ports.clear()
    _pinned.clear()


# --- the threadsafe wake -------------------------------------------------------------------

_wake_callback: Optional[Any] = None
_wake_lock = threading.Lock()


def _on_wake(port_id: int) -> None:
    """Called on the Rust notifier thread (never a runtime worker) with the GIL taken by cffi."""
    port = _ports.get(port_id)
    if port is None:
        return
    loop = port.loop_ref()
    if loop is None:
        return
    try:
        loop.call_soon_threadsafe(port.drain)
    except RuntimeError:  # the loop closed; its close hook or finalizer closes the port
        pass


def _wake_error(exc_type: Any, exc: Any, tb: Any) -> None:
    """Never let the callback print from the notifier thread (it may run during shutdown)."""


def _install_wake_callback() -> None:
    global _wake_callback
    with _wake_lock:
        if _wake_callback is None:
            # Created once and kept for the life of the process: cffi callbacks must outlive
            # every call through them.
            cb: Callable[[int], None] = _on_wake
            _wake_callback = ffi.callback("void(*)(uint64_t)", cb, onerror=_wake_error)
            check(lib.affi_set_wake_callback(_wake_callback))


def _value(c: Any) -> Any:
    """The value a completion or an item carries."""
    tag = c.tag
    if tag == TAG_INT:
        return c.int_value
    if tag == TAG_NONE:
        return None
    if tag == TAG_FLOAT:
        return c.float_value
    if tag == TAG_BOOL:
        return c.int_value != 0
    if tag == TAG_STR:
        return text_at(c.data, c.len)
    if tag == TAG_BYTES:
        return bytes_at(c.data, c.len)
    if tag == TAG_OBJECT:
        return _wrap_object(c.int_value)
    return unpack(c.data, c.len)


def _reraise(exc: BaseException) -> None:
    raise exc


def _wrap_object(handle: int) -> Any:
    from ._object import RustObject

    return RustObject._adopt(handle)
