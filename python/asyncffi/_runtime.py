"""Process-wide settings and lifecycle: ``configure``, ``stats`` and the exit hook.

The Rust runtimes start lazily on the first call that needs them. At interpreter exit an
``atexit`` hook stops every wake-up (waiting for one in progress, with the GIL released by the
C call), closes every port and shuts the runtimes down within a bounded time, so no Rust thread
ever calls into a finalizing interpreter.
"""

from __future__ import annotations

import atexit
import os
import threading
from typing import Dict, Optional

from ._errors import check
from ._loader import ffi, lib

WAKES = ("threadsafe", "fd")
FLAVORS = {
    "multi_thread": lib.AFFI_FLAVOR_MULTI_THREAD,
    "current_thread": lib.AFFI_FLAVOR_CURRENT_THREAD,
}
RUNTIMES = {
    "tokio": lib.AFFI_RUNTIME_TOKIO,
    "async-std": lib.AFFI_RUNTIME_ASYNC_STD,
    "async_std": lib.AFFI_RUNTIME_ASYNC_STD,
    "loop": lib.AFFI_RUNTIME_LOOP,
}
#: Upper bound of each wait at interpreter exit (wake in progress, runtime shutdown).
SHUTDOWN_TIMEOUT_MS = 2000


class _State:
    """Mutable process state, guarded by ``lock``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.wake = "threadsafe"
        #: Set when the first port opens: the wake strategy is fixed from then on.
        self.ports_opened = False
        #: Set by the exit hook: no new port may open.
        self.shut_down = False
        #: Set in a child forked after asyncffi was used: the Rust threads are gone.
        self.forked = False


state = _State()


def configure(
    worker_threads: Optional[int] = None,
    flavor: str = "multi_thread",
    wake: str = "threadsafe",
) -> None:
    """Sets how asyncffi runs, before first use.

    :param worker_threads: tokio worker threads (multi-thread flavour); ``None`` means one per
        core.
    :param flavor: ``"multi_thread"`` (default) or ``"current_thread"`` (one dedicated thread
        drives every tokio task).
    :param wake: how completions wake the event loop: ``"threadsafe"`` (a dedicated notifier
        thread calls ``loop.call_soon_threadsafe``; the default) or ``"fd"`` (an eventfd watched
        with ``loop.add_reader``; loops without ``add_reader`` fall back to ``"threadsafe"``).
    :raises ValueError: an unknown flavour or wake strategy, or ``worker_threads < 1``.
    :raises RuntimeError: tokio, or the first port, already started with different settings.

    Calling it again with the settings already in force is a no-op. Thread-safe.
    """
    if flavor not in FLAVORS:
        raise ValueError(f"flavor must be one of {sorted(FLAVORS)}, not {flavor!r}")
    if wake not in WAKES:
        raise ValueError(f"wake must be one of {list(WAKES)}, not {wake!r}")
    if worker_threads is not None:
        if isinstance(worker_threads, bool) or not isinstance(worker_threads, int):
            raise TypeError(
                f"worker_threads must be an int or None, not {type(worker_threads).__name__}"
            )
        if not 1 <= worker_threads <= 4096:
            raise ValueError(f"worker_threads must be between 1 and 4096, got {worker_threads}")
    with state.lock:
        if state.ports_opened and wake != state.wake:
            raise RuntimeError(
                f"asyncffi already runs with wake={state.wake!r}; configure(wake={wake!r}) must "
                "be called before the first call into Rust"
            )
        check(lib.affi_configure(worker_threads or 0, FLAVORS[flavor]))
        state.wake = wake


_STATS_FIELDS = (
    "live_tasks",
    "live_values",
    "live_ports",
    "live_objects",
    "live_callables",
    "live_calls",
    "live_py_errors",
    "live_py_streams",
    "spawned",
    "completed",
    "cancelled",
    "panicked",
    "wakes",
)


def stats() -> Dict[str, int]:
    """Counters from the Rust side, as a dict of ints.

    ``live_tasks``, ``live_values``, ``live_ports`` and ``live_objects`` count what is alive
    now (Rust tasks, undelivered heap payloads, completion ports, objects held by Python);
    ``live_callables``, ``live_calls``, ``live_py_errors`` and ``live_py_streams`` count Python
    callables held by Rust, calls from Rust to Python in flight, Python exceptions held by Rust
    and Python iterators read by Rust (a Rust stream read by Python is a task);
    ``spawned``, ``completed``, ``cancelled``, ``panicked`` and ``wakes`` only grow. Thread-safe.
    """
    out = ffi.new("AffiStats *")
    check(lib.affi_stats(out))
    return {name: int(getattr(out, name)) for name in _STATS_FIELDS}


def runtime_id(name: str) -> int:
    """The C value of a runtime name."""
    try:
        return RUNTIMES[name]
    except (KeyError, TypeError):
        raise ValueError(f"runtime must be 'tokio', 'async-std' or 'loop', not {name!r}") from None


def _shutdown() -> None:
    from . import _port

    with state.lock:
        if state.shut_down:
            return
        state.shut_down = True
        forked = state.forked
    _port.forget_all()
    if not forked:  # a forked child's Rust state belongs to threads that do not exist here
        lib.affi_shutdown(SHUTDOWN_TIMEOUT_MS)


def _after_fork_in_child() -> None:
    from . import _port

    if state.ports_opened:
        state.lock = threading.Lock()  # the parent's lock may have been held at fork time
        state.forked = True
        _port.forget_all()


atexit.register(_shutdown)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
