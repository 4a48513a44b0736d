"""Rust's ``log`` and ``tracing`` records in Python's ``logging``: one ``LogBridge`` per library.

The Rust side (``asyncffi::logging``) queues each enabled record without ever waiting for the
GIL; a Python thread per library (``asyncffi-log:<name>``, a daemon) waits for records with the
GIL released, takes them in batches and hands each to ``logging.getLogger(<Rust target>)``, the
target's ``::`` turned into ``.``: ``mylib::store`` logs to ``mylib.store``. The level is the
Rust level (``trace`` is 5, below ``DEBUG``), ``pathname``/``lineno`` the Rust file and line,
``created`` the moment Rust logged, ``threadName`` the Rust thread's name, and the record's
structured fields (``log``'s key-values, ``tracing``'s fields) are its ``extra`` attributes
(a field named like a ``LogRecord`` attribute gets a trailing ``_``).

Rust skips records below the effective level of their logger without building them: every
bridge knows the root logger's level, every logger's own level and ``logging.disable``'s,
pushed when logging is reconfigured (``Logger.setLevel``, ``logging.disable``, ``dictConfig``
and ``fileConfig`` all clear the logging manager's cache, which is hooked here) and by
``asyncffi.refresh_log_levels()`` (call it after changing levels some other way, e.g.
assigning ``logger.level`` directly).

At interpreter exit each bridge is closed after its library's runtimes stopped and before
``logging.shutdown`` runs: what is queued is handed to ``logging`` on the exiting thread.
"""

from __future__ import annotations

import logging
import threading
import traceback
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from ._errors import check
from ._loader import ffi
from ._values import pack, unpack

if TYPE_CHECKING:
    from ._loader import NativeLib

#: Records taken per drain call.
BATCH = 512
#: How long the thread waits in one call, in ms (it stops within this after ``close``).
WAIT_MS = 1000
#: ``LogRecord`` attributes a field must not overwrite (``makeRecord`` refuses them).
_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

#: When logging started (``relativeCreated`` counts from it).
_START: float = getattr(logging, "_startTime", 0.0)

_bridges: List[LogBridge] = []
_bridges_lock = threading.Lock()


class LogBridge:
    """The log bridge of one library. Made when the library loads; thread-safe.

    :ivar installed: whether Rust's ``log`` records (``"log"``) and ``tracing`` events
        (``"tracing"``) reach it; a library that installed a logger of its own first keeps it.
    """

    def __init__(self, name: str, native: NativeLib) -> None:
        self.name = name
        self._lib = native
        bits = int(native.affi_log_install())
        self.installed = frozenset(
            kind for bit, kind in ((1, "log"), (2, "tracing")) if bits > 0 and bits & bit
        )
        self._len = ffi.new("uintptr_t *")
        #: Held while records are taken and handed to logging: one drainer at a time, in order.
        self._drain_lock = threading.Lock()
        #: Clear while delivery is held (``held``); the thread waits for it before draining.
        self._flowing = threading.Event()
        self._flowing.set()
        self._closed = False
        self._thread: Optional[threading.Thread] = None
        if self.installed:
            self.refresh_levels()
            self._thread = threading.Thread(
                target=self._run, name=f"asyncffi-log:{name}", daemon=True
            )
            self._thread.start()

    # --- levels --------------------------------------------------------------------------------

    def refresh_levels(self) -> None:
        """Pushes the current effective levels of Python's loggers to Rust."""
        check(self._lib.affi_log_levels(*_levels_buffer()), self._lib)

    # --- counters ------------------------------------------------------------------------------

    def stats(self) -> Dict[str, int]:
        """The bridge's counters: ``crossed`` (records queued for Python since the library
        loaded), ``dropped`` (records lost to a full queue), ``queued`` (waiting now) and
        ``capacity`` (how many records the queue holds before it drops)."""
        return self._stats(0)

    def set_capacity(self, capacity: int) -> int:
        """Sets how many records the queue holds before it drops (default 8192, at least 1);
        returns the previous capacity."""
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        before = self._stats(0)["capacity"]
        self._stats(capacity)
        return before

    def _stats(self, capacity: int) -> Dict[str, int]:
        out = ffi.new("AffiLogStats *")
        check(self._lib.affi_log_stats(capacity, out), self._lib)
        return {k: int(getattr(out, k)) for k in ("crossed", "dropped", "queued", "capacity")}

    # --- delivery ------------------------------------------------------------------------------

    def flush(self) -> int:
        """Hands every record queued now to ``logging`` on the calling thread; returns how
        many."""
        return self._flush(held_ok=True)

    def _flush(self, held_ok: bool) -> int:
        n = 0
        with self._drain_lock:
            while held_ok or self._flowing.is_set():
                data = self._lib.affi_log_drain(BATCH, self._len)
                size = self._len[0]
                if size == 0:
                    return n
                records = unpack(data, size)
                n += len(records)
                _emit(records)
        return n

    def hold(self) -> _Held:
        """A context manager during which the bridge's thread hands nothing to ``logging``
        (records wait in the queue, or are dropped when it is full); for tests and for code
        that must not see a handler run on another thread meanwhile."""
        return _Held(self)

    def _run(self) -> None:
        lib = self._lib
        while True:
            self._flowing.wait()
            status = lib.affi_log_wait(WAIT_MS)  # the GIL released meanwhile
            if status < 0:
                return  # closed and empty
            if status > 0:
                try:
                    self._flush(held_ok=False)
                except Exception:  # logging reports its handlers' errors; this is a bug
                    traceback.print_exc()

    def close(self, timeout: float = 2.0) -> None:
        """Stops the thread and hands what is left to ``logging`` on the calling thread.
        Idempotent; later records are dropped (and counted)."""
        if self._closed or not self.installed:
            return
        self._closed = True
        self._flowing.set()
        self._lib.affi_log_close()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        try:
            self.flush()
        except Exception:
            traceback.print_exc()


class _Held:
    def __init__(self, bridge: LogBridge) -> None:
        self._bridge = bridge

    def __enter__(self) -> LogBridge:
        self._bridge._flowing.clear()
        # A drain in progress finishes before the hold takes effect.
        with self._bridge._drain_lock:
            pass
        return self._bridge

    def __exit__(self, *exc: Any) -> None:
        self._bridge._flowing.set()


def _emit(records: List[Any]) -> None:
    """Hands decoded records to their loggers (see ``asyncffi::logging::encode``)."""
    get_logger = logging.getLogger
    for level, name, message, file, line, fields, created, thread in records:
        logger = get_logger(name)
        if not logger.isEnabledFor(level):
            continue
        extra = None
        if fields:
            extra = {(k + "_" if k in _RESERVED else k): v for k, v in fields.items()}
        record = logger.makeRecord(
            name, level, file or "(unknown file)", line, message, (), None, extra=extra
        )
        record.created = created
        record.msecs = (created - int(created)) * 1000
        record.relativeCreated = (created - _START) * 1000
        record.threadName = thread if thread is not None else "(unnamed Rust thread)"
        logger.handle(record)


def _levels_buffer() -> Any:
    """``[floor, {logger name: own level}]`` packed, with its length, for ``affi_log_levels``:
    the root is ``""``; a disabled logger counts as above every level."""
    manager = logging.Logger.manager
    own: Dict[str, int] = {"": logging.getLogger().level}
    for name, logger in list(manager.loggerDict.items()):
        if isinstance(logger, logging.Logger):
            if logger.disabled:
                own[name] = 255
            elif logger.level != logging.NOTSET:
                own[name] = logger.level
    data = pack([int(manager.disable), own])
    return data, len(data)


def register(bridge: LogBridge) -> None:
    """Adds ``bridge`` to those refreshed when logging is reconfigured."""
    with _bridges_lock:
        _bridges.append(bridge)
    _hook_logging()


def refresh_log_levels() -> None:
    """Pushes the effective levels of Python's loggers to every loaded library, so that
    Rust skips the records they would drop. Called on its own whenever ``Logger.setLevel``,
    ``logging.disable``, ``dictConfig`` or ``fileConfig`` change them; call it after changing
    levels another way (assigning ``Logger.level`` or ``Logger.disabled``)."""
    with _bridges_lock:
        bridges = list(_bridges)
    for bridge in bridges:
        if bridge.installed and not bridge._closed:
            bridge.refresh_levels()


def close_all() -> None:
    """Closes every bridge (at exit, after the runtimes stopped)."""
    with _bridges_lock:
        bridges = list(_bridges)
    for bridge in bridges:
        bridge.close()


_hooked = False


def _hook_logging() -> None:
    """Wraps the logging manager's ``_clear_cache``, which logging calls whenever levels
    change, so that every change reaches Rust."""
    global _hooked
    if _hooked:
        return
    _hooked = True
    manager = logging.Logger.manager
    original = getattr(manager, "_clear_cache", None)
    if original is None:  # not CPython's logging: refresh_log_levels() only
        return

    def _clear_cache() -> None:
        original()
        refresh_log_levels()

    manager._clear_cache = _clear_cache  # type: ignore[attr-defined]
