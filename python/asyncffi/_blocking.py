"""Calls from synchronous code: ``RustCall.wait()`` and ``for item in stream``.

A blocking call runs the same Rust future as an awaited one, on the same runtime, but no event
loop waits for it: the calling thread opens a completion port of its own with the ``wait``
strategy, calls the exported function with it, and blocks in ``affi_port_wait`` (a condition
variable in Rust; cffi releases the GIL for the call) until the outcome is queued, then drains
it as a loop would. Runtime threads only push and signal, as for every port: none of them ever
waits for the GIL, and other Python threads run meanwhile.

The wait is cut into slices of ``SLICE`` seconds. Between two slices Python runs its signal
handlers, so Ctrl-C raises ``KeyboardInterrupt`` within a slice; the call's port is then
closed, which cancels the Rust task (its future is dropped on its runtime) and frees whatever
was queued. ``timeout`` does the same and raises ``TimeoutError``.

Requests from Rust are answered on the waiting thread: a ``loop``-runtime task is polled there
(that thread is its event loop). Calls that lend Python callables or iterators to Rust need a
loop to run them and are refused.
"""

from __future__ import annotations

import collections
import time
from typing import TYPE_CHECKING, Any, Callable, Deque, Iterator, Optional, Tuple

from ._errors import (
    SHUT_DOWN,
    ClosedError,
    RustPanic,
    ShutDownError,
    check,
    rust_error,
    status_error,
)
from ._loader import abi, ffi
from ._port import _value, trio_host
from ._runtime import state
from ._values import text_at, unpack

if TYPE_CHECKING:
    from ._library import Library

#: The longest single wait in Rust, in seconds: how late a Ctrl-C may be noticed, at most.
SLICE = 0.05
_SLICE_MS = int(SLICE * 1000)
#: Completions copied out per drain call.
BATCH = 64

OK = abi.AFFI_OUTCOME_OK
ERROR = abi.AFFI_OUTCOME_ERROR
PANIC = abi.AFFI_OUTCOME_PANIC
ITEM = abi.AFFI_OUTCOME_ITEM
ITEMS = abi.AFFI_OUTCOME_ITEMS
REQUEST_POLL = abi.AFFI_REQUEST_POLL
WAIT = abi.AFFI_WAKE_WAIT

#: The token of a blocking call on its own port (one call per port).
TOKEN = 1


def refuse_in_loop(form: str, async_form: str) -> None:
    """Raises ``RuntimeError`` if an event loop (asyncio's, or a trio run) runs on this
    thread: blocking it would stall every task it runs.

    :param form: the blocking form used, for the message (``"fetch(...).wait()"``).
    :param async_form: what to write instead (``"await fetch(...)"``).
    """
    import asyncio

    if asyncio._get_running_loop() is not None or trio_host() is not None:
        raise RuntimeError(
            f"{form} blocks until Rust is done, and an event loop is running in this thread: "
            f"use `{async_form}` instead (or run the blocking form in a thread, e.g. with "
            "asyncio.to_thread)"
        )


def _open(library: Library) -> int:
    """A new ``wait`` port of ``library``.

    :raises ShutDownError: the library or the interpreter has shut down.
    :raises RuntimeError: this process was forked from one that used asyncffi.
    """
    if state.forked:
        raise RuntimeError(
            "asyncffi cannot run in a process forked from one that used it: its Rust threads "
            "do not survive fork()"
        )
    if state.shut_down:
        raise ShutDownError(SHUT_DOWN)
    if library.shut_down:
        raise ShutDownError(f"the library {library.name} has shut down")
    return check(library.lib.affi_port_open(WAIT), library.lib)


def _outcome(c: Any, library: Library) -> Tuple[bool, Any]:
    """``(True, value)`` or ``(False, exception)`` for the completion ``c`` of a call."""
    status = c.status
    if status == OK:
        return True, _value(c, library)
    if status == ERROR:
        fields = unpack(c.data, c.len)
        return False, rust_error(fields[1], fields[0])
    if status == PANIC:
        return False, RustPanic(text_at(c.data, c.len))
    return False, ClosedError("the Rust task was dropped: its runtime shut down")


class _Waiter:
    """One ``wait`` port and the thread that waits on it (the one that made it). Closing it
    cancels the Rust task still bound to it and frees what it queued."""

    __slots__ = ("buf", "deadline", "lib", "library", "pid")

    def __init__(self, library: Library, timeout: Optional[float]) -> None:
        self.library = library
        self.lib = library.lib
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.buf = ffi.new("AffiCompletion[]", BATCH)
        self.pid = _open(library)

    def close(self) -> None:
        pid, self.pid = self.pid, 0
        if pid:
            self.lib.affi_port_close(pid)

    def next_batch(self) -> int:
        """Waits for completions and copies them into ``buf``; returns how many (> 0). Polls
        the ``loop``-runtime tasks that asked for it on the way. The payloads stay valid until
        ``release``.

        :raises TimeoutError: the deadline passed.
        :raises ClosedError: the port was closed (the library or the interpreter shut down).
        """
        lib, pid, buf = self.lib, self.pid, self.buf
        while True:
            n = lib.affi_port_drain(pid, buf, BATCH)
            if n < 0:
                raise self._closed(n)
            if n:
                polls = [buf[i].token for i in range(n) if buf[i].status == REQUEST_POLL]
                if len(polls) < n:
                    for task in polls:  # the completions are read before the next drain
                        lib.affi_task_poll(task)
                    return n
                for task in polls:
                    lib.affi_task_poll(task)
                continue  # a drain that returned items is followed by another
            slice_ms = _SLICE_MS
            if self.deadline is not None:
                left = self.deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("the Rust call did not finish in time (it was cancelled)")
                slice_ms = max(1, min(slice_ms, int(left * 1000) + 1))
            ready = lib.affi_port_wait(pid, slice_ms)  # the GIL is released meanwhile
            if ready < 0:
                raise self._closed(ready)

    def release(self) -> None:
        self.lib.affi_port_release(self.pid)

    def _closed(self, status: int) -> Exception:
        if state.shut_down or self.library.shut_down:
            return ShutDownError(SHUT_DOWN)
        return status_error(status, self.lib)


def call(
    library: Library, fn: Callable[..., int], args: Tuple[Any, ...], timeout: Optional[float]
) -> Any:
    """Runs the exported async function ``fn`` of ``library`` with the C arguments ``args`` to
    completion on this thread, without an event loop; returns its value or raises its error.
    ``KeyboardInterrupt`` (or ``timeout`` seconds) cancels the Rust task on the way out."""
    waiter = _Waiter(library, timeout)
    lib = waiter.lib
    try:
        task = fn(waiter.pid, TOKEN, *args)
        if task == 0:  # ready on its first poll: its outcome is here already
            one = ffi.new("AffiCompletion *")
            try:
                check(lib.affi_port_take_inline(waiter.pid, TOKEN, one), lib)
                ok, value = _outcome(one[0], library)
            finally:
                lib.affi_port_release_inline(waiter.pid, TOKEN)
        elif task < 0:
            raise waiter._closed(task) if state.shut_down else status_error(task, lib)
        else:
            ok, value = _wait_for_outcome(waiter)
    finally:
        waiter.close()
    if ok:
        return value
    raise value


def _wait_for_outcome(waiter: _Waiter) -> Tuple[bool, Any]:
    buf = waiter.buf
    while True:
        n = waiter.next_batch()
        try:
            for i in range(n):
                c = buf[i]
                if c.token == TOKEN and c.status < ITEM:
                    return _outcome(c, waiter.library)
        finally:
            waiter.release()


def stream(
    library: Library, fn: Callable[..., int], args: Tuple[Any, ...], buffer: int, grant_at: int
) -> Iterator[Any]:
    """The items of the exported stream function ``fn`` of ``library`` (C arguments ``args``),
    read on this thread without an event loop. A generator: leaving it (``break``, an
    exception, ``close()``, garbage collection) cancels the Rust stream at once. The Rust
    producer runs at most ``buffer`` items ahead; credit goes back every ``grant_at`` items."""
    waiter = _Waiter(library, None)
    lib = waiter.lib
    try:
        task = fn(waiter.pid, TOKEN, *args, buffer)
        if task <= 0:
            raise waiter._closed(task) if state.shut_down else status_error(task, lib)
        inbox: Deque[Any] = collections.deque()
        unacked = 0
        end: Optional[Tuple[bool, Any]] = None
        while True:
            while inbox:
                item = inbox.popleft()
                unacked += 1
                if unacked >= grant_at:
                    lib.affi_stream_grant(task, unacked)
                    unacked = 0
                yield item
            if end is not None:
                break
            if unacked:  # before waiting: the producer may be waiting for credit
                lib.affi_stream_grant(task, unacked)
                unacked = 0
            end = _take_items(waiter, inbox)
        ok, value = end
        if not ok:
            raise value
    finally:
        waiter.close()


def _take_items(waiter: _Waiter, inbox: Deque[Any]) -> Optional[Tuple[bool, Any]]:
    """Waits for the next completions of the stream; puts its items into ``inbox``. Returns
    how the stream ended if that came too (after its items), else ``None``."""
    buf = waiter.buf
    n = waiter.next_batch()
    end = None
    try:
        for i in range(n):
            c = buf[i]
            status = c.status
            if c.token != TOKEN:
                continue
            if status == ITEMS:
                inbox.extend(unpack(c.data, c.len))
            elif status == ITEM:
                inbox.append(_value(c, waiter.library))
            elif status < ITEM:
                outcome = _outcome(c, waiter.library)
                if outcome[0]:
                    end = (True, None)
                else:
                    end = outcome
    finally:
        waiter.release()
    return end


__all__ = ["SLICE", "call", "refuse_in_loop", "stream"]
