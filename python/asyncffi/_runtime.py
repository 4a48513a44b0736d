"""Process-wide settings and lifecycle: ``configure``, ``stats`` and the exit hook.

Every loaded library (``Library``) has its own Rust runtimes, started lazily on the first call
that needs them; ``configure`` sets them all, and those of libraries loaded later. At
interpreter exit an ``atexit`` hook shuts every library down, in reverse load order: it stops
the library's wake-ups (waiting for one in progress, with the GIL released by the C call),
closes its ports and shuts its runtimes down within a bounded time, so no Rust thread ever
calls into a finalizing interpreter. After it, calls on the main thread raise
``ShutDownError``.
"""

from __future__ import annotations

import atexit
import json
import logging  # noqa: F401  (imported before the exit hook: logging.shutdown runs after it)
import os
import threading
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from ._errors import check
from ._loader import ffi, library_path, open_native

if TYPE_CHECKING:
    from ._library import Library
    from ._loader import NativeLib

WAKES = ("threadsafe", "fd")
#: The built-in Rust runtimes' names and the flavours of their scheduler, with their C values,
#: as the Rust core lists them (``affi_runtimes``): the same for every library of this C ABI
#: version, so read once, from the first library that needs them (``learn_runtimes``). A
#: library's own runtimes (C values from 16) are its alone: ``library_runtimes``.
RUNTIMES: Dict[str, int] = {}
FLAVORS: Dict[str, int] = {}
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
        #: Every loaded library, in load order (appended under ``lock``).
        self.libraries: List[Library] = []
        #: ``(worker_threads, flavor)`` of the last ``configure``, applied to libraries
        #: loaded later; ``None`` until then.
        self.runtime_config: Optional[Tuple[int, int]] = None


state = _State()


def configure(
    worker_threads: Optional[int] = None,
    flavor: str = "multi_thread",
    wake: str = "threadsafe",
) -> None:
    """Sets how asyncffi runs, before first use.

    :param worker_threads: worker threads of the Rust runtime's scheduler (multi-thread
        flavour); ``None`` means one per core.
    :param flavor: ``"multi_thread"`` (default) or ``"current_thread"`` (one dedicated thread
        drives every task), or another flavour the library lists.
    :param wake: how completions wake the event loop: ``"threadsafe"`` (a dedicated notifier
        thread calls ``loop.call_soon_threadsafe``; the default) or ``"fd"`` (an eventfd watched
        with ``loop.add_reader``; loops without ``add_reader`` fall back to ``"threadsafe"``).
    :raises ValueError: an unknown flavour or wake strategy, or ``worker_threads < 1``.
    :raises RuntimeError: the runtime, or the first port, already started with different
        settings.

    It applies to every library loaded now and to those loaded later (each has its own
    runtimes).
    Calling it again with the settings already in force is a no-op. Thread-safe.
    """
    if flavor not in _known(FLAVORS):
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
        config = (worker_threads or 0, FLAVORS[flavor])
        for library in state.libraries:
            check(library.lib.affi_configure(*config), library.lib)
        state.runtime_config = config
        state.wake = wake


STATS_FIELDS = (
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
    """Counters from the Rust side, summed over every loaded library, as a dict of ints (each
    library's own are ``Library.stats()``).

    ``live_tasks``, ``live_values``, ``live_ports`` and ``live_objects`` count what is alive
    now (Rust tasks, undelivered heap payloads, completion ports, objects held by Python);
    ``live_callables``, ``live_calls``, ``live_py_errors`` and ``live_py_streams`` count Python
    callables held by Rust, calls from Rust to Python in flight, Python exceptions held by Rust
    and Python iterators read by Rust (a Rust stream read by Python is a task);
    ``spawned``, ``completed``, ``cancelled``, ``panicked`` and ``wakes`` only grow. Thread-safe.
    """
    total = dict.fromkeys(STATS_FIELDS, 0)
    for library in list(state.libraries):
        for name, value in library.stats().items():
            total[name] += value
    return total


def on_main_thread() -> bool:
    """Whether this is the main thread: after shutdown, the thread that runs the ``atexit``
    handlers, and the only one besides the daemon threads the interpreter is about to stop."""
    return threading.current_thread() is threading.main_thread()


#: The C value of a library's first own runtime (``asyncffi::register_runtime!``).
FIRST_OWN_RUNTIME = 16


def runtime_id(name: str, table: Optional[Dict[str, int]] = None) -> int:
    """The C value of a runtime name (one ``affi_runtimes`` lists; ``table``: a library's
    runtimes, built-in and its own, from ``library_runtimes``)."""
    try:
        return (RUNTIMES if table is None else table)[name]
    except (KeyError, TypeError):
        pass
    try:
        return _known(RUNTIMES)[name]  # empty until a library listed them
    except (KeyError, TypeError):
        names = runtime_names()
        if table is not None:
            names += [n for n, v in table.items() if v >= FIRST_OWN_RUNTIME]
        listed = ", ".join(repr(n) for n in names)
        raise ValueError(f"runtime must be one of {listed}, not {name!r}") from None


def library_runtimes(native: NativeLib) -> Dict[str, int]:
    """The runtimes of the library ``native`` by name: the built-in ones and those it
    registered itself (``asyncffi::register_runtime!``), with their C values."""
    size = ffi.new("uintptr_t *")
    ptr = native.affi_runtimes(size)
    names = json.loads(bytes(ffi.buffer(ptr, size[0])).decode("utf-8"))
    return {str(k): int(v) for k, v in names["runtimes"].items()}


def runtime_names() -> List[str]:
    """The names of the runtimes calls can run on, without aliases, in the order of their C
    values."""
    first: Dict[int, str] = {}
    for name, value in _known(RUNTIMES).items():
        first.setdefault(value, name)
    return [first[value] for value in sorted(first)]


def learn_runtimes(native: NativeLib) -> None:
    """Fills ``RUNTIMES`` and ``FLAVORS`` from the Rust core of ``native`` (``affi_runtimes``),
    unless done already."""
    if RUNTIMES:
        return
    size = ffi.new("uintptr_t *")
    ptr = native.affi_runtimes(size)
    names = json.loads(bytes(ffi.buffer(ptr, size[0])).decode("utf-8"))
    FLAVORS.update(names["flavors"])
    builtin = {k: v for k, v in names["runtimes"].items() if v < FIRST_OWN_RUNTIME}
    RUNTIMES.update(builtin)  # last: a non-empty RUNTIMES means both are filled


def _known(table: Dict[str, int]) -> Dict[str, int]:
    """``table`` (``RUNTIMES`` or ``FLAVORS``), filled from the built-in cdylib (opened, not
    loaded as a library) if no library has been loaded yet."""
    if not RUNTIMES:
        learn_runtimes(open_native(library_path()))
    return table


def _shutdown() -> None:
    with state.lock:
        if state.shut_down:
            return
        state.shut_down = True
        forked = state.forked
        libraries = list(state.libraries)
    # Each library stops its own wake-ups and runtimes; each step is bounded, so the whole is
    # bounded by the number of libraries times twice SHUTDOWN_TIMEOUT_MS.
    for library in reversed(libraries):
        library._stop(at_exit=True, forked=forked)


def _after_fork_in_child() -> None:
    if state.ports_opened:
        state.lock = threading.Lock()  # the parent's lock may have been held at fork time
        state.forked = True
        for library in state.libraries:
            library.forget_ports(at_exit=False)


atexit.register(_shutdown)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
