"""Built-in Rust functions, implemented in ``rust/native``: the demo, the tests and the
benchmarks use them, and they show what an exported function looks like from Python.

Every function checks its arguments when called (``TypeError``, ``ValueError``,
``OverflowError``) and returns a ``RustCall``: nothing runs in Rust until it is awaited.
``runtime`` is ``"tokio"`` (default), ``"async-std"``, or ``"loop"`` (the Rust future is polled
on the event loop's own thread, inside tokio's context: no thread hop, best for Rust code that
awaits Python one call after another).
"""

from __future__ import annotations

from typing import Any, AsyncIterable, Awaitable, Callable, Iterable, List, Optional, Union

from ._call import PyCallableArg, RustCall, RustCallWithCallables
from ._loader import lib
from ._object import RustObject
from ._pystream import PyStreamArg
from ._runtime import runtime_id
from ._stream import RustStream
from ._values import i64, text, u64, value_args
from ._values import seconds as as_seconds

__all__ = [
    "Counter",
    "add",
    "call_python",
    "call_python_n",
    "count",
    "count_produced",
    "cpu",
    "echo",
    "echo_stream",
    "fail",
    "fail_after",
    "gather_python",
    "panic",
    "pending",
    "sleep",
    "sum_stream",
    "take",
    "tick",
    "timeout_python",
]


def sleep(seconds: float, *, runtime: str = "tokio") -> RustCall[None]:
    """Sleeps ``seconds`` on the runtime's timer; the event loop stays free meanwhile.

    :raises ValueError: negative, NaN or infinite ``seconds`` (when awaited).
    """
    return RustCall(lib.affi_demo_sleep, (as_seconds(seconds), runtime_id(runtime)))


def echo(value: Any, *, runtime: str = "tokio") -> RustCall[Any]:
    """Returns ``value`` after a round trip through Rust (tuples come back as lists)."""
    return RustCall(lib.affi_demo_echo, (*value_args(value), runtime_id(runtime)))


def add(a: int, b: int) -> RustCall[int]:
    """``a + b`` in Rust; ``RustError`` of kind ``"overflow"`` if it leaves 64 bits."""
    return RustCall(lib.affi_demo_add, (i64(a, "a"), i64(b, "b")))


def fail(message: str, *, kind: str = "demo") -> RustCall[Any]:
    """Raises ``RustError(message)`` with ``.kind == kind`` from Rust."""
    m, k = text(message, "message"), text(kind, "kind")
    return RustCall(lib.affi_demo_fail, (m, len(m), k, len(k)))


def panic(message: str) -> RustCall[Any]:
    """Panics in the Rust future; raises ``RustPanic(message)``."""
    m = text(message, "message") or b"explicit panic"
    return RustCall(lib.affi_demo_panic, (m, len(m)))


def pending(*, runtime: str = "tokio") -> RustCall[Any]:
    """Never completes: a Rust future to cancel."""
    return RustCall(lib.affi_demo_pending, (runtime_id(runtime),))


def cpu(n: int) -> RustCall[int]:
    """``sum(range(n))``, computed by a loop on tokio's blocking pool."""
    return RustCall(lib.affi_demo_cpu, (u64(n, "n"),))


def tick(interval: float, count: int) -> RustCall[List[float]]:
    """Sleeps ``interval`` seconds ``count`` times on tokio; returns the observed offsets (in
    seconds since the start) of each wake-up."""
    count = u64(count, "count")
    if count > 0xFFFF_FFFF:
        raise OverflowError(f"count={count} does not fit in 32 bits")
    return RustCall(lib.affi_demo_tick, (as_seconds(interval, "interval"), count))


class Counter(RustObject):
    """An opaque Rust counter: ``await counter.add(n)`` returns the running total."""

    __slots__ = ()

    def __init__(self) -> None:
        from ._errors import check

        super().__init__(check(lib.affi_demo_counter_new()))

    def add(self, n: int) -> RustCall[int]:
        """Adds ``n`` in Rust and returns the new total.

        :raises ClosedError: the counter is closed.
        """
        return RustCall(lib.affi_demo_counter_add, (self.handle, i64(n, "n")))


# --- Rust awaiting Python ------------------------------------------------------------------
#
# ``fn`` may be an ``async def`` function, any callable returning an awaitable, or a plain
# function. Each call runs on the event loop awaiting the Rust call, as an asyncio task, in a
# copy of the contextvars context of the code that called the ``demo`` function.

PyFn = Callable[..., Union[Any, Awaitable[Any]]]


def call_python(fn: PyFn, *args: Any, runtime: str = "tokio") -> RustCall[Any]:
    """Rust awaits ``fn(*args)`` once and returns its result (a Python exception comes back as
    the original exception object)."""
    tag, _, _, data, size = value_args(list(args))
    return RustCallWithCallables(
        lib.affi_demo_call_python, (PyCallableArg(fn), tag, data, size, runtime_id(runtime))
    )


def call_python_n(fn: PyFn, n: int, *, runtime: str = "tokio") -> RustCall[int]:
    """Rust awaits ``fn(i)`` for ``i`` in ``range(n)`` one after another and returns the sum of
    the int results."""
    return RustCallWithCallables(
        lib.affi_demo_call_python_n, (PyCallableArg(fn), u64(n, "n"), runtime_id(runtime))
    )


def gather_python(fn: PyFn, n: int, *, runtime: str = "tokio") -> RustCall[List[Any]]:
    """Rust awaits ``fn(i)`` for every ``i`` in ``range(n)`` concurrently and returns the results
    in order; the first exception cancels the calls still running."""
    return RustCallWithCallables(
        lib.affi_demo_gather_python, (PyCallableArg(fn), u64(n, "n"), runtime_id(runtime))
    )


def timeout_python(fn: PyFn, seconds: float, *args: Any, runtime: str = "tokio") -> RustCall[Any]:
    """Rust starts ``fn(*args)`` and drops it after ``seconds`` (which cancels the Python task):
    returns True if it timed out, else its result."""
    tag, _, _, data, size = value_args(list(args))
    return RustCallWithCallables(
        lib.affi_demo_timeout_python,
        (PyCallableArg(fn), as_seconds(seconds), tag, data, size, runtime_id(runtime)),
    )


# --- Streams -------------------------------------------------------------------------------
#
# Rust -> Python: the function returns a ``RustStream``, an async iterator. ``buffer`` bounds
# how many items the Rust producer runs ahead of the consumer (default 1024).
#
# Python -> Rust: ``aiter`` may be an async iterator, an async generator or a plain iterable;
# Rust reads it as a stream, asking for up to ``prefetch`` items ahead (default 1024). When Rust
# drops it, the iterator is closed (an async generator's ``finally`` blocks run).

AnyIterable = Union[AsyncIterable[Any], Iterable[Any]]


def _prefetch(prefetch: Optional[int]) -> int:
    if prefetch is None:
        return 0
    n = u64(prefetch, "prefetch")
    if n < 1:
        raise ValueError("prefetch must be >= 1")
    return n


def count(
    n: int, *, delay: float = 0.0, buffer: Optional[int] = None, runtime: str = "tokio"
) -> RustStream[int]:
    """A Rust stream of ``0, 1, ..., n - 1``, sleeping ``delay`` seconds before each item."""
    n = i64(n, "n")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return RustStream(
        lib.affi_demo_count, (n, as_seconds(delay, "delay"), runtime_id(runtime)), buffer
    )


def count_produced() -> int:
    """How many items the most recent ``count`` stream has produced so far (0 before any):
    with a slow consumer it stays within ``buffer`` of what was consumed."""
    return lib.affi_demo_count_produced()


def fail_after(n: int, message: str) -> RustStream[int]:
    """A Rust stream of ``0, ..., n - 1`` that then raises ``RustError(message)``."""
    n = i64(n, "n")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    m = text(message, "message")
    return RustStream(lib.affi_demo_fail_after, (n, m, len(m)))


def sum_stream(
    aiter: AnyIterable, *, prefetch: Optional[int] = None, runtime: str = "tokio"
) -> RustCall[int]:
    """Rust sums the ints ``aiter`` yields (an exception it raises comes back as itself)."""
    return RustCallWithCallables(
        lib.affi_demo_sum_stream,
        (PyStreamArg(aiter), _prefetch(prefetch), runtime_id(runtime)),
    )


def echo_stream(
    aiter: AnyIterable,
    *,
    buffer: Optional[int] = None,
    prefetch: Optional[int] = None,
    runtime: str = "tokio",
) -> RustStream[Any]:
    """A Rust stream of what ``aiter`` yields: Python -> Rust -> Python."""
    return RustStream(
        lib.affi_demo_echo_stream,
        (PyStreamArg(aiter), _prefetch(prefetch), runtime_id(runtime)),
        buffer,
    )


def take(
    aiter: AnyIterable, k: int, *, prefetch: Optional[int] = None, runtime: str = "tokio"
) -> RustCall[List[Any]]:
    """Rust reads the first ``k`` items of ``aiter`` (fewer if it ends first), returns them as
    a list, and drops the stream, which closes ``aiter``."""
    return RustCallWithCallables(
        lib.affi_demo_take,
        (PyStreamArg(aiter), u64(k, "k"), _prefetch(prefetch), runtime_id(runtime)),
    )
