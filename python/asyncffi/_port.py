"""One completion port per running event loop and library: where Rust outcomes become future
results.

Each library (``Library``, one per loaded cdylib) has its own ports, kept by its ``Ports``
registry (the base class of ``Library``), keyed by event loop: a loop that calls into two
libraries has two ports, one in each library's Rust core, drained independently. A port is
opened lazily by the first call on a loop. Calls register ``token -> future`` in
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
import collections
import contextvars
import functools
import gc
import inspect
import itertools
import sys
import threading
import weakref
from types import CoroutineType
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Protocol, Tuple, cast

from ._closing import on_close, run_close_hooks
from ._errors import (
    SHUT_DOWN,
    ClosedError,
    RustPanic,
    ShutDownError,
    check,
    exception_fields,
    rust_error,
    status_error,
)
from ._loader import abi, ffi
from ._pystream import Pump, PyStreamArg, quiet, refuse_pull
from ._runtime import state
from ._values import (
    I64_MAX,
    I64_MIN,
    NULL,
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
    from ._library import Library
    from ._loader import NativeLib
    from ._stream import Inbox

#: Eager tasks (``eager_start``) exist: Python 3.12 and later.
_EAGER = sys.version_info >= (3, 12)
#: Completions copied out per drain call.
BATCH = 256
#: Seconds between two audits of a port's calls into Python while some are outstanding (see
#: ``Port._audit_calls``).
AUDIT_DELAY = 1.0
#: Batches drained per turn of the event loop before the rest waits for the next turn.
MAX_BATCHES = 16

OK = abi.AFFI_OUTCOME_OK
ERROR = abi.AFFI_OUTCOME_ERROR
PANIC = abi.AFFI_OUTCOME_PANIC
ITEM = abi.AFFI_OUTCOME_ITEM
ITEMS = abi.AFFI_OUTCOME_ITEMS
REQUEST_CALL = abi.AFFI_REQUEST_CALL
REQUEST_CANCEL = abi.AFFI_REQUEST_CANCEL
REQUEST_RELEASE = abi.AFFI_REQUEST_RELEASE
REQUEST_PULL = abi.AFFI_REQUEST_PULL
REQUEST_POLL = abi.AFFI_REQUEST_POLL

#: Ids of Python objects lent to Rust; unique in the process (across libraries), never reused.
_object_ids = itertools.count(1)


class Waiting(Protocol):
    """What ``drain`` resolves with a call's outcome: an ``asyncio.Future``, or the inbox of a
    stream (whose outcome is its end)."""

    def done(self) -> bool: ...
    def set_result(self, result: Any, /) -> None: ...
    def set_exception(self, exception: BaseException, /) -> None: ...
    def cancel(self, msg: Any = None) -> bool: ...


class Port:
    """The completion port of one event loop. Used only on that loop's thread, except
    ``close`` (also called by finalizers and at exit)."""

    __slots__ = (
        "__weakref__",
        "_audit",
        "_audits",
        "_buf",
        "_complete",
        "_drain",
        "_one",
        "_plain",
        "_release",
        "_release_inline",
        "_resume_at",
        "_take_inline",
        "calls",
        "closed",
        "fd",
        "id",
        "lib",
        "library",
        "loop_ref",
        "objects",
        "pending",
        "streams",
        "tokens",
        "wake",
    )

    def __init__(self, library: Library, loop: asyncio.AbstractEventLoop, wake: str) -> None:
        #: The library this port belongs to (its registry), and its C ABI.
        self.library = library
        lib = self.lib = library.lib
        # The C functions of the hot paths, bound once per port.
        self._drain = lib.affi_port_drain
        self._release = lib.affi_port_release
        self._complete = lib.affi_call_complete
        self._take_inline = lib.affi_port_take_inline
        self._release_inline = lib.affi_port_release_inline
        self.loop_ref = weakref.ref(loop)
        #: The timer of the next audit of ``calls``, if one is due; ``_audits``: whether the
        #: loop has timers (trio's host has none: a second done callback per call instead).
        self._audit: Any = None
        self._audits = hasattr(loop, "call_later")
        #: Whether the loop is one of asyncio's own (``_plain_loop``).
        self._plain = _plain_loop(loop)
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
        #: Where an interrupted ``_handle`` was: the item's index, the last future it took
        #: and the index of the last stream item it put into its inbox.
        self._resume_at: Tuple[int, Any, int] = (0, None, -1)
        if wake == "fd":
            port_id = lib.affi_port_open(lib.AFFI_WAKE_FD)
            if port_id < 0:  # no eventfd on this platform
                wake = "threadsafe"
            else:
                self.id = port_id
                self.fd = check(lib.affi_port_fd(port_id), lib)
                try:
                    loop.add_reader(self.fd, self.drain)
                except NotImplementedError:  # e.g. Windows' proactor loop
                    lib.affi_port_close(port_id)
                    self.fd = -1
                    wake = "threadsafe"
        if wake == "threadsafe":
            library.install_wake_callback()
            self.id = check(lib.affi_port_open(lib.AFFI_WAKE_THREADSAFE), lib)
        self.wake = wake
        library.by_id[self.id] = self

    def drain(self) -> None:
        """Resolves the futures of the queued completions. Runs on the loop thread.

        Drains until a drain returns nothing: completions queued while a batch is being
        handled (results of calls it answered, requests, items) do not wake the loop but are
        taken here. At most ``MAX_BATCHES`` batches per turn: when Rust produces faster than
        Python consumes, the rest waits for the next turn (scheduled here, since no wake-up will
        come for it), so other callbacks and timers keep running.

        Interrupted (``KeyboardInterrupt`` at any line), it finishes the batch it took (from
        the item it was at, which is not handled twice), releases it and schedules the next
        drain before the exception goes on. An interrupt before its first line, which no
        Python code can catch, loses the wake-up: the Rust watchdog wakes the port again.
        """
        buf = self._buf
        pid = self.id
        _drain = self._drain
        _release = self._release
        emptied = False
        # > 0: a batch of n items is in buf, not all handled; < 0: handled, payloads may still
        # be held (releasing again is harmless). Each value is set on the line that makes it
        # true, so an interrupt between two lines always finds the right one.
        n = 0
        try:
            for _ in range(MAX_BATCHES):
                n = _drain(pid, buf, BATCH)
                if n <= 0:
                    emptied = True
                    return
                n = self._handle(buf, n)
                if n:
                    _release(pid)
        except BaseException as exc:
            if n > 0:
                self._finish(buf, n)
            if n:
                _release(pid)
            if isinstance(exc, Exception):
                return  # an outcome Python could not rebuild: ``_finish`` failed that call
            raise
        finally:
            if not emptied:  # Rust counts on a drain that returns nothing: schedule one
                self._drain_later()

    def _handle(self, buf: Any, n: int, start: int = 0) -> int:
        """Handles the ``n`` completions of the batch in ``buf``; returns -1 if they hold
        payloads to release, else 0. Interrupted, it notes where it was (``_resume_at``) for
        ``_finish``, which ``drain`` calls."""
        pending = self.pending
        streams = self.streams
        held = False
        i = start
        fut: Any = None
        fed = -1  # the index of the last stream item put into its inbox
        try:
            for i in range(start, n):
                c = buf[i]
                status = c.status
                if status >= ITEM:
                    if status == REQUEST_CALL:  # the common request, inline
                        held = True  # its arguments
                        self._start_call(c.token, c.int_value, unpack(c.data, c.len))
                        continue
                    if status > ITEMS:
                        held = self._request(c, status) or held
                        continue
                    tag = c.tag
                    inbox = streams.get(c.token)
                    if inbox is None:  # the stream was closed: free the items
                        if tag == TAG_OBJECT:
                            self.lib.affi_object_free(c.int_value)
                        held = held or tag >= TAG_BYTES
                        continue
                    held = held or (TAG_BYTES <= tag != TAG_OBJECT)
                    fed = self._items(inbox, c, status, i)
                    waiter = inbox.waiter
                    if waiter is not None:
                        if not waiter.done():
                            waiter.set_result(None)
                        inbox.waiter = None  # after: an interrupted wake-up is done again
                    continue
                fut = pending.pop(c.token, None)
                tag = c.tag
                if tag >= TAG_BYTES:
                    if tag == TAG_OBJECT:
                        if fut is None:  # abandoned: nobody will wrap the object
                            self.lib.affi_object_free(c.int_value)
                            continue
                    else:
                        held = True
                if fut is None:
                    continue
                # An exception here (a value Python cannot rebuild, a future done already)
                # goes to ``_finish``, which fails that call only.
                if status == OK and tag == TAG_INT:  # the common case, inline
                    fut.set_result(c.int_value)
                    continue
                _resolve(fut, *self._outcome(c))
            return -1 if held else 0
        except BaseException:
            self._resume_at = (i, fut, fed)
            raise

    def _finish(self, buf: Any, n: int) -> None:
        """Finishes an interrupted batch (on the exception path only): the item it was at is
        completed without doing twice what it did already, then the rest is handled."""
        i, fut, fed = self._resume_at
        self._resume_at = (0, None, -1)
        c = buf[i]
        status = c.status
        token = c.token
        if status > ITEMS:
            self._redo_request(c, status)
        elif status >= ITEM:
            inbox = self.streams.get(token)
            if inbox is None:
                if c.tag == TAG_OBJECT:
                    self.lib.affi_object_free(c.int_value)  # a stale handle: an error code
            else:
                if fed != i:
                    self._items(inbox, c, status, i)
                waiter = inbox.waiter
                if waiter is not None:
                    if not waiter.done():
                        waiter.set_result(None)
                    inbox.waiter = None
        else:
            delivered = False
            if token in self.pending:  # not taken yet
                fut = self.pending.pop(token)
            elif fut is not None and fut.done():
                # Resolved already: with this item's object, or it is the future of an earlier
                # item (this one was abandoned, and its object is nobody's).
                delivered = c.tag == TAG_OBJECT and _holds_object(fut, c.int_value)
                fut = None
            if fut is None:
                if c.tag == TAG_OBJECT and not delivered:
                    self.lib.affi_object_free(c.int_value)  # a stale handle: an error code
            else:
                try:
                    _resolve(fut, *self._outcome(c))
                except Exception as exc:
                    # A value Python cannot rebuild fails that call only; a future already
                    # cancelled (its task is being cancelled) just stays so.
                    if not fut.done():
                        fut.set_exception(exc)
        if i + 1 < n:
            try:
                self._handle(buf, n, i + 1)
            except Exception:
                self._finish(buf, n)  # the next item that failed, and the rest

    def _drain_later(self) -> None:
        loop = self.loop_ref()
        if loop is not None and not self.closed:
            loop.call_soon(self.drain)

    def _items(self, inbox: Any, c: Any, status: int, index: int) -> int:
        """Puts the stream items in ``c`` (a batch, or one item) into ``inbox``; items Python
        cannot rebuild end the stream with that error. Returns ``index``, the completion's
        index in its batch, which ``_handle`` keeps to know that they were put."""
        try:
            items = unpack(c.data, c.len) if status == ITEMS else [_value(c, self.library)]
        except Exception as exc:
            inbox.set_exception(exc)
            return index
        # One line: an interrupt comes before the items are put or after the return value is.
        return inbox.extend(items) or index

    def _outcome(self, c: Any) -> Tuple[bool, Any]:
        """``(True, value)`` or ``(False, exception)`` for completion ``c``."""
        status = c.status
        if status == OK:
            return True, _value(c, self.library)
        if status == ERROR:
            return False, self._error(unpack(c.data, c.len))
        if status == PANIC:
            return False, RustPanic(text_at(c.data, c.len))
        return False, ClosedError("the Rust task was dropped: its runtime shut down")

    def take_inline(self, token: int) -> Any:
        """The outcome of call ``token``, which finished on its first poll (its function
        returned 0): its value, or raises its error. No future, no wake, no thread hop.

        Re-entrant: Python code that runs while the outcome is decoded (a finalizer run by the
        garbage collector, say) may take other inline outcomes on this port. The nested take
        gets a completion buffer of its own (``_one`` is ``None`` while one is in use), and
        Rust frees each outcome's payload only when its own token is released.

        Interrupted (``KeyboardInterrupt`` at any line), it releases the payload on the way
        out: Rust holds it by token until then, also past the port's close, so a release
        skipped here would never come. (Releasing a token whose payload is gone, or that holds
        none, does nothing.) A buffer left marked in use by an interrupt is replaced by the
        next take.
        """
        one = self._one
        if one is None:  # in use by the take this one interrupts (or lost to an interrupt)
            one = ffi.new("AffiCompletion[]", 1)
        try:
            self._one = None
            status = self._take_inline(self.id, token, one)
            if status < 0:
                raise status_error(status, self.lib)
            c = one[0]
            ok, value = self._outcome(c)
            if c.tag >= TAG_BYTES and c.tag != TAG_OBJECT:
                self._release_inline(self.id, token)
        except BaseException:
            self._release_inline(self.id, token)
            raise
        finally:
            self._one = one  # free again (a nested take puts back a buffer of its own)
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
        return rust_error(fields[1], fields[0])

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
            self.lib.affi_task_poll(c.token)
        elif status == REQUEST_PULL:
            pump = self.objects.get(c.int_value)
            if type(pump) is Pump:
                pump.pull(c.token)
            elif not self.closed:  # closed: Rust's close ends the stream (see _start_call)
                # Rust adopted something else as an iterator: end its stream, never hang
                refuse_pull(self.lib, c.int_value, pump)
        elif status == REQUEST_CANCEL:
            # Taken out only once handled: an interrupted request is handled again, and doing
            # any of these twice is harmless.
            task = self.calls.get(c.token)
            if task is not None:
                task.cancel()
                del self.calls[c.token]
        elif status == REQUEST_RELEASE:
            released = self.objects.get(c.int_value)
            if type(released) is Pump:
                released.release()
            self.objects.pop(c.int_value, None)
        return False

    def _redo_request(self, c: Any, status: int) -> None:
        """Handles again a request whose handling was interrupted (exception path only),
        without doing twice what must be done once: a call not started yet (or started, but
        not registered) is answered as cancelled (an answer Rust has already taken is
        refused); a poll or a pull is repeated (a spurious poll is harmless, extra
        credit only makes the pump send ahead what Rust would ask for next)."""
        if status == REQUEST_CALL:
            if c.token not in self.calls:
                self._answer_error(c.token, _interrupted())
        else:
            self._request(c, status)

    def _start_call(self, call_id: int, callable_id: int, args: List[Any]) -> None:
        entry = self.objects.get(callable_id)
        if type(entry) is not tuple:  # answer, never hang
            if self.closed:
                # Closed (or forgotten at exit by another thread, mid-batch here): Rust's close
                # cancels the call. An error answer would reach a caller that must not see one.
                return
            if entry is None:  # cannot happen while Rust holds the callable
                error: Exception = ClosedError("the Python callable was released")
            else:  # Rust adopted something else as a callable (an iterator, an exception)
                what = "an iterator" if type(entry) is Pump else f"a {type(entry).__name__}"
                error = TypeError(f"Python object {callable_id} is {what}, not a callable")
            self._answer_error(call_id, error)
            return
        fn, context = entry
        ctx = context.copy()
        result: Any = None
        task: Optional[asyncio.Future[Any]] = None
        try:
            result = ctx.run(fn, *args)
            if type(result) is CoroutineType:  # the common case: a task of the loop at once
                # Its first step taken now (see ``_step_now``): on Python 3.12 and later, an
                # eager task. With a task factory, or on a loop that is not asyncio's (trio's
                # host): ``create_task``, the first step in the loop's next turn.
                loop = self.loop_ref()
                if not self._plain or loop._task_factory is not None:  # type: ignore[union-attr]
                    task = ctx.run(loop.create_task, result)  # type: ignore[union-attr]
                elif _EAGER:
                    task = asyncio.Task(result, loop=loop, context=ctx, eager_start=True)  # type: ignore
                else:
                    task = ctx.run(asyncio.Task, result, loop=loop)
                    _step_now(task, loop)
                if task.done():  # it returned without suspending: answer now
                    if task.cancelled() or task.exception() is not None:
                        self.calls[call_id] = task
                        self._call_done(call_id, task)
                    else:
                        self._answer_value(call_id, task.result())
                    return
            elif inspect.isawaitable(result):
                # The port's loop, given explicitly: under trio it is the run's host (``_trio``).
                task = ctx.run(asyncio.ensure_future, result, loop=self.loop_ref())
            else:
                self._answer_value(call_id, result)
                return
            if task is not result:  # a task of ours: never reported as destroyed pending
                task._log_destroy_pending = False  # type: ignore[union-attr]
        except BaseException as exc:
            if task is not None:
                _abandon(task)  # nobody waits for it any more
            elif inspect.iscoroutine(result):
                result.close()  # interrupted before it became a task: never to be awaited
            # A KeyboardInterrupt (the callable's or one that cut its start short) cancels the
            # call: it is raised once, from the loop, not also from the task awaiting the call.
            # So does a SystemExit: the future of the Rust call would otherwise hold it too,
            # and asyncio would report it as never retrieved once the loop stops.
            interrupt = isinstance(exc, (KeyboardInterrupt, SystemExit))
            self._answer_error(call_id, _interrupted(exc) if interrupt else exc)
            if interrupt:
                # KeyboardInterrupt, SystemExit: raise them from the loop, after this batch, so
                # that the rest of the batch is still delivered.
                loop = self.loop_ref()
                if loop is not None:
                    loop.call_soon(_reraise, exc)
            return
        # The callback first: a call registered is always answered (interrupted before it is
        # registered, the batch's recovery answers it). A KeyboardInterrupt where the callback
        # can catch nothing (at its entry, or in the loop's code that runs it) loses the
        # answer: the audit gives it (or, on a loop without timers, a second callback).
        done = functools.partial(self._call_done, call_id)
        task.add_done_callback(done)
        self.calls[call_id] = task
        if not self._audits:
            task.add_done_callback(done)
        elif self._audit is None:
            self._audit = self.loop_ref().call_later(  # type: ignore[union-attr]
                AUDIT_DELAY, self._audit_calls
            )

    def _audit_calls(self) -> None:
        """Answers the calls whose task is done but whose done callback has not answered:
        lost to a ``KeyboardInterrupt`` raised where it could catch nothing (at its first line,
        or in the loop's code around it), the answer would never come, and Rust would wait for
        ever. Runs ``AUDIT_DELAY`` after a call starts, then again while calls are outstanding.
        Answering before a callback that is merely late is harmless: the callback then finds
        the call answered."""
        self._audit = None
        if self.closed:
            return
        for call_id, task in list(self.calls.items()):
            if task.done():
                self._call_done(call_id, task)
        if self.calls:
            loop = self.loop_ref()
            if loop is not None and not loop.is_closed():
                self._audit = loop.call_later(AUDIT_DELAY, self._audit_calls)

    def _call_done(self, call_id: int, task: asyncio.Future[Any]) -> None:
        try:
            exc: Optional[BaseException]
            try:
                exc = task.exception()  # also marks it retrieved
            except asyncio.CancelledError as cancelled:  # with the message it was cancelled with
                exc = cancelled
            if call_id not in self.calls:
                return  # Rust dropped the call and no longer waits
            if exc is not None:
                self._answer_error(call_id, exc)
            else:
                self._answer_value(call_id, task.result())
        except BaseException as error:
            # Interrupted: answer anyway (Rust refuses a second answer to a call).
            if call_id in self.calls:
                interrupted = isinstance(error, KeyboardInterrupt)
                self._answer_error(call_id, _interrupted() if interrupted else error)
            raise
        finally:
            self.calls.pop(call_id, None)

    def _answer_value(self, call_id: int, value: Any) -> None:
        if type(value) is int and I64_MIN <= value <= I64_MAX:  # the common case, inline
            status = self._complete(self.id, call_id, OK, TAG_INT, value, 0.0, NULL, 0)
        else:
            try:
                args = value_args(value)
            except Exception as exc:
                self._answer_error(call_id, exc)
                return
            status = self._complete(self.id, call_id, OK, *args)
        # ERR_CLOSED: Rust stopped waiting; nothing to free. 1: drain soon (see _answered).
        if status == 1:
            self._answered(status)

    def _answer_error(self, call_id: int, exc: BaseException) -> None:
        """Answers call ``call_id`` with ``exc``; always answers, whatever ``exc`` holds."""
        data = pack(exception_fields(exc))
        object_id = self.keep(exc)
        status = self._complete(
            self.id, call_id, ERROR, TAG_PACKED, object_id, 0.0, data, len(data)
        )
        if status < 0:
            self.objects.pop(object_id, None)  # Rust did not take it
        self._answered(status)

    def _answered(self, status: int) -> None:
        """After an answer: 1 means it resumed a Rust task polled on this loop (the ``loop``
        runtime) and queued work without waking the loop, which drains it here instead (an
        answer given during a drain never returns 1: that drain goes on anyway).

        At once, unless other callbacks are due in this turn of the loop (asyncio's queue of
        ready callbacks is not empty): those are most often the answers of other calls,
        resuming the same Rust task, so the drain is left for the end of the turn, where one
        poll of that task serves them all. A lone answer is never delayed, nor is any answer
        on a loop without that queue (uvloop, trio)."""
        if status == 1 and not self.closed:
            ready = getattr(self.loop_ref(), "_ready", None)
            if type(ready) is not collections.deque or not ready:
                self.drain()
            else:
                self._drain_later()

    def close(self) -> None:
        """Closes the port: cancels its Rust tasks and frees what is queued. Idempotent."""
        if self.closed:
            return
        self.closed = True
        audit, self._audit = self._audit, None
        if audit is not None:
            audit.cancel()
        registry = self.library
        registry.by_id.pop(self.id, None)
        registry.pinned.pop(self.id, None)
        loop = self.loop_ref()
        if loop is not None:
            ref = registry.by_loop.get(loop)
            if ref is not None and ref() is self:
                del registry.by_loop[loop]
            if self.fd >= 0 and not loop.is_closed():
                try:
                    loop.remove_reader(self.fd)
                except Exception:  # the loop is going away; the fd is the port's to close
                    pass
        self.lib.affi_port_close(self.id)
        self.forget(abandon=True)

    def forget(self, abandon: bool) -> None:
        """The port is closed: drops what waits for its outcomes, runs the features' close
        hooks (see ``_closing``; ``abandon``: the tasks they run for Rust are forgotten without
        a report) and forgets the objects lent to Rust. Never raises."""
        self.pending.clear()
        run_close_hooks(self, abandon)
        self.objects.clear()


@on_close
def _forget_calls(port: Port, abandon: bool) -> None:
    """Close hook of the calls from Rust: the tasks running them are forgotten (abandoned
    without a report if ``abandon``)."""
    calls = list(port.calls.values())
    port.calls.clear()
    if abandon:
        for task in calls:
            quiet(task)


class Ports:
    """The ports of one library, one per event loop, and the library's wake callback: the
    base class of ``Library``, so that a call finds its loop's port with one method call.

    Ownership: a loop owns its port (through its close hook, or ``pinned`` for loops that take
    no hook); every registry here holds ports weakly. A port holds its pending futures and so
    its loop: an unclosed loop with work in flight is then a reference cycle, which the garbage
    collector frees, and the loop's finalizer closes the Rust port.
    """

    def __init__(self, name: str, lib: NativeLib) -> None:
        #: The library's name (for messages) and C ABI.
        self.name = name
        self.lib = lib
        #: Set by the library's shutdown (or at exit): no new port opens.
        self.shut_down = False
        #: Open ports by id, for the wake callback.
        self.by_id: weakref.WeakValueDictionary[int, Port] = weakref.WeakValueDictionary()
        #: Open ports by loop.
        self.by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, weakref.ref[Port]] = (
            weakref.WeakKeyDictionary()
        )
        #: Ports of loops that refused the close hook (no instance ``__dict__``): kept until
        #: closed.
        self.pinned: Dict[int, Port] = {}
        #: The last port used on this thread (the running loop's, almost always), weakly.
        self.local = threading.local()
        self._wake_callback: Optional[Any] = None
        self._wake_lock = threading.Lock()
        #: The classes of the library's exported objects, in manifest order: a completion
        #: carrying an object names its class by its 1-based position here, in ``len``.
        self.object_classes: Tuple[type, ...] = ()
        _registries.append(self)

    def current_port(self, loop: Optional[asyncio.AbstractEventLoop] = None) -> Port:
        """The port of ``loop`` (default: the running loop), opened on first use.

        :raises RuntimeError: no running event loop, or asyncffi cannot run in this process.
        :raises ShutDownError: the library has shut down (or the interpreter is exiting).
        """
        if loop is None:
            loop = asyncio.get_running_loop()
        try:
            port: Optional[Port] = self.local.port()
        except AttributeError:  # this thread's first call into the library
            port = None
        if port is not None and port.loop_ref() is loop and not port.closed:
            return port
        ref = self.by_loop.get(loop)
        port = ref() if ref is not None else None
        if port is None or port.closed:
            port = self._open_port(loop)
        self.local.port = weakref.ref(port)
        return port

    def _open_port(self, loop: asyncio.AbstractEventLoop) -> Port:
        with state.lock:
            if state.forked:
                raise RuntimeError(
                    "asyncffi cannot run in a process forked from one that used it: its Rust "
                    "threads do not survive fork(); start subprocesses with multiprocessing's "
                    "'spawn' or 'forkserver' method"
                )
            if state.shut_down:
                raise ShutDownError(SHUT_DOWN)
            if self.shut_down:
                raise ShutDownError(f"the library {self.name} has shut down")
            state.ports_opened = True
            wake = state.wake
        if loop.is_closed():
            raise RuntimeError("the event loop is closed")
        port = Port(cast("Library", self), loop, wake)
        self.by_loop[loop] = weakref.ref(port)
        if not _hook_close(loop, port):
            self.pinned[port.id] = port
        # Not at exit: the exit hook closes every port at once, from the main thread, whereas
        # this would call remove_reader on loops that other threads may still be running.
        weakref.finalize(loop, self.lib.affi_port_close, port.id).atexit = False
        return port

    def open_ports(self) -> List[Port]:
        """The ports open now."""
        return list(self.by_id.values())

    def forget_ports(self, at_exit: bool = True) -> None:
        """At exit, at the library's shutdown or after fork: marks every port closed on the
        Python side (Rust closes them all at once at shutdown; a forked child must not touch
        them). At exit their tasks are abandoned (see ``Port.forget``)."""
        for port in list(self.by_id.values()):
            port.closed = True
            port.forget(abandon=at_exit)
        self.by_id.clear()
        self.pinned.clear()

    # --- the threadsafe wake ---------------------------------------------------------------

    def _on_wake(self, port_id: int) -> None:
        """Called on the library's Rust notifier thread (never a runtime worker) with the GIL
        taken by cffi."""
        port = self.by_id.get(port_id)
        if port is None:
            return
        loop = port.loop_ref()
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(port.drain)
        except RuntimeError:  # the loop closed; its close hook or finalizer closes the port
            pass

    def install_wake_callback(self) -> None:
        """Registers the library's wake callback, once."""
        with self._wake_lock:
            if self._wake_callback is None:
                # Created once and kept for the life of the process: cffi callbacks must
                # outlive every call through them (the library is never unloaded).
                cb: Callable[[int], None] = self._on_wake
                callback = ffi.callback("void(*)(uint64_t)", cb, onerror=_wake_error)
                check(self.lib.affi_set_wake_callback(callback), self.lib)
                self._wake_callback = callback


#: The port registries of every library, in load order.
_registries: List[Ports] = []


def running_loop() -> asyncio.AbstractEventLoop:
    """The running asyncio loop, else the host of the trio run on this thread (``_trio``).

    :raises RuntimeError: neither runs here ("no running event loop").
    """
    loop = asyncio._get_running_loop()
    if loop is None:
        host = trio_host()
        if host is None:
            return asyncio.get_running_loop()  # raises asyncio's error
        loop = host
    return loop


def trio_host() -> Any:
    """The host of the trio run on this thread (see ``_trio``), or None. Imports nothing
    unless the program imported trio; asked only when no asyncio loop runs."""
    if not _current_host:
        if "trio" not in sys.modules:
            return None
        from ._trio import current_host

        _current_host.append(current_host)
    return _current_host[0]()


#: ``_trio.current_host``, once trio is in use.
_current_host: List[Callable[[], Any]] = []


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


# --- loops that are gone but never collected -----------------------------------------------


def _held_only_by_itself(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether every reference to ``loop`` comes from its own machinery: uvloop's handles and
    the futures bound to it. Exact: the references found must account for its whole
    reference count, so a reference gc cannot see (a local variable of a running function,
    a C extension's) keeps it."""
    found = 0
    for referrer in gc.get_referrers(loop):
        if not (type(referrer).__module__ == "uvloop.loop" or isinstance(referrer, asyncio.Future)):
            return False
        for referent in gc.get_referents(referrer):
            if referent is loop:
                found += 1
        referent = None
    # Not counted above: getrefcount's argument, this frame's ``loop`` and the caller's.
    return sys.getrefcount(loop) - 3 == found


def _reclaim_abandoned(phase: str, info: Dict[str, Any]) -> None:
    """A gc callback: after each full collection, closes the ports of uvloop loops that are
    stopped, unclosed and referenced by nothing but themselves. uvloop never collects such a
    loop once it has run on the main thread (its signal watcher keeps it alive), so no
    finalizer would ever cancel its Rust work."""
    if phase != "stop" or info.get("generation") != 2 or state.shut_down:
        return
    for port in [port for registry in _registries for port in registry.open_ports()]:
        loop = port.loop_ref()
        if (
            loop is None
            or not type(loop).__module__.startswith("uvloop")
            or loop.is_running()
            or loop.is_closed()
        ):
            continue
        try:
            if _held_only_by_itself(loop):
                port.close()
        except Exception:  # never let a gc callback raise
            pass
        loop = None


if hasattr(sys, "getrefcount") and hasattr(gc, "callbacks"):  # CPython (uvloop's home)
    gc.callbacks.append(_reclaim_abandoned)


def _wake_error(exc_type: Any, exc: Any, tb: Any) -> None:
    """Never let the callback print from the notifier thread (it may run during shutdown)."""


def _value(c: Any, library: Library) -> Any:
    """The value a completion or an item of ``library`` carries."""
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
        return wrap_object(library, c.int_value, c.len)
    return unpack(c.data, c.len)


def _interrupted(exc: Optional[BaseException] = None) -> asyncio.CancelledError:
    """The answer to a call from Rust whose start or answer a ``KeyboardInterrupt`` (or the
    ``SystemExit`` ``exc``) cut short."""
    name = "KeyboardInterrupt" if exc is None else type(exc).__name__
    return asyncio.CancelledError(f"interrupted by {name}")


def _resolve(fut: Waiting, ok: bool, value: Any) -> None:
    """Resolves ``fut`` with an outcome of ``Port._outcome``: its value, its exception, or a
    cancellation that keeps the ``CancelledError``'s message."""
    if ok:
        fut.set_result(value)
    elif isinstance(value, asyncio.CancelledError):
        fut.cancel(*value.args[:1])
    else:
        fut.set_exception(value)


def _holds_object(fut: Any, handle: int) -> bool:
    """Whether future ``fut`` (done) was resolved with the Rust object ``handle``."""
    if fut.cancelled() or fut.exception() is not None:
        return False
    return getattr(fut.result(), "_handle", None) == handle


def _plain_loop(loop: Any) -> bool:
    """Whether ``loop`` is one of asyncio's own (a ``BaseEventLoop``, whose task factory is
    its ``_task_factory``), where a call's task is created directly as an ``asyncio.Task``."""
    return isinstance(loop, asyncio.BaseEventLoop) and hasattr(loop, "_task_factory")


def _step_now(task: asyncio.Future[Any], loop: Any) -> None:
    """Takes the first step of ``task``, just created on asyncio loop ``loop``, at once (as
    an eager task does, from Python 3.12 on): a coroutine that returns without suspending is
    done on return, with no turn of the loop and no done callback. The step the task scheduled
    (the newest callback of the loop's ready queue) is run now and marked cancelled, so that
    the loop skips it. If the newest callback is not that step, nothing.

    Interrupted before the step ran, the step is left to the loop; interrupted by the step
    (a ``KeyboardInterrupt`` from the coroutine), the task holds the exception, as when the
    loop runs it."""
    ready = getattr(loop, "_ready", None)
    if type(ready) is not collections.deque or not ready:
        return
    step = ready[-1]
    if getattr(step._callback, "__self__", None) is not task:
        return
    try:
        step._cancelled = True
        step._context.run(step._callback, *step._args)  # the step, as the loop runs it
    except BaseException:
        coro = task.get_coro()
        if coro is not None and inspect.getcoroutinestate(coro) == inspect.CORO_CREATED:
            step._cancelled = False  # it never ran: the loop runs it
        raise


def _abandon(task: asyncio.Future[Any]) -> None:
    """Task ``task`` of a call answered already (it was interrupted): cancelled if still
    pending, never reported as destroyed pending nor as holding an exception not retrieved."""
    task._log_destroy_pending = False  # type: ignore[attr-defined]
    if task.done():
        task._log_traceback = False
    else:
        task.cancel()


def _reraise(exc: BaseException) -> None:
    raise exc


def wrap_object(library: Ports, handle: int, index: int) -> Any:
    """The object ``handle`` of ``library`` in its class: the exported object class at 1-based
    ``index`` of the manifest, or ``RustObject`` (index 0: a type exported by hand)."""
    from ._object import RustObject

    classes = library.object_classes
    cls = classes[index - 1] if 0 < index <= len(classes) else RustObject
    return cls._adopt(library, handle)  # type: ignore[attr-defined]
