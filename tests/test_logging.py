"""Rust's ``log`` and ``tracing`` records in Python's ``logging``: the logger named after the
Rust target, level, message, file/line and fields; levels applied on the Rust side before a
record crosses; a full queue dropping and counting; records logged just before exit; and no
runtime thread waiting for the GIL to log."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from typing import Iterator, List

import asyncffi
import pytest
from conftest import find_testlib
from test_gil import hold_gil

LOGS = "asyncffi_testlib.logs"  # the module path of rust/testlib/src/logs.rs
LOGS_RS = os.path.join("testlib", "src", "logs.rs")


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.records: List[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def collect(testlib: asyncffi.Library) -> Iterator[Collect]:
    """Collects the records of every logger under ``asyncffi_testlib``, ``mylib`` and
    ``testlib`` (at DEBUG unless a test sets another level), restoring levels after."""
    handler = Collect()
    names = ["asyncffi_testlib", "mylib", "testlib"]
    loggers = [logging.getLogger(n) for n in names]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    testlib.logging.flush()  # nothing left over from an earlier test
    handler.records.clear()
    try:
        yield handler
    finally:
        testlib.logging.flush()
        for logger in loggers:
            logger.removeHandler(handler)
            logger.setLevel(logging.NOTSET)
        for name in list(logging.Logger.manager.loggerDict):
            if name.startswith(("asyncffi_testlib.", "mylib.", "testlib.")):
                logging.getLogger(name).setLevel(logging.NOTSET)


def crossed(testlib: asyncffi.Library) -> int:
    return testlib.logging.stats()["crossed"]


def test_a_log_record_arrives_with_its_logger_level_place_and_fields(
    testlib: asyncffi.Library, collect: Collect
) -> None:
    before = time.time()
    line = testlib.log_record("info", "hello from rust", "")
    line2 = testlib.log_record("warn", "stored", "mylib::store")
    testlib.logging.flush()
    first, second = collect.records
    assert first.name == LOGS
    assert (first.levelno, first.levelname) == (logging.INFO, "INFO")
    assert first.getMessage() == "hello from rust"
    assert first.pathname.endswith(LOGS_RS) and first.filename == "logs.rs"
    assert first.lineno == line
    # log's key-values, typed, as extra attributes.
    assert (first.user, first.attempt) == ("ada", 3)  # type: ignore[attr-defined]
    assert before - 1 <= first.created <= time.time() + 1
    # An explicit target: `::` becomes `.`.
    assert (second.name, second.levelno, second.lineno) == ("mylib.store", logging.WARNING, line2)


def test_a_tracing_event_arrives_with_its_fields(
    testlib: asyncffi.Library, collect: Collect
) -> None:
    assert testlib.logging.installed == {"log", "tracing"}
    line = testlib.trace_event("traced")
    testlib.logging.flush()
    (record,) = collect.records
    assert (record.name, record.levelno, record.getMessage()) == (LOGS, logging.INFO, "traced")
    assert record.pathname.endswith(LOGS_RS) and record.lineno == line
    assert (record.items, record.ok) == (7, True)  # type: ignore[attr-defined]


def test_rust_trace_is_level_5_and_below_debug(testlib: asyncffi.Library, collect: Collect) -> None:
    testlib.log_record("trace", "fine", "")
    logging.getLogger("asyncffi_testlib").setLevel(5)
    testlib.log_record("trace", "finer", "")
    testlib.logging.flush()
    assert [(r.levelno, r.getMessage()) for r in collect.records] == [(5, "finer")]


def test_records_below_the_level_do_not_cross(testlib: asyncffi.Library, collect: Collect) -> None:
    logging.getLogger("asyncffi_testlib").setLevel(logging.WARNING)  # pushed to Rust at once
    start = crossed(testlib)
    # Held: Python's logging applies the levels in force when a record is handed over, and
    # the bridge's thread could hand these over while logging.disable below is in force.
    with testlib.logging.hold():
        testlib.log_burst(1_000, 3)
        assert crossed(testlib) == start + 3
        # A child logger with a level of its own wins over its parent's, as in Python.
        logging.getLogger(LOGS).setLevel(logging.DEBUG)
        testlib.log_burst(10, 0)
        assert crossed(testlib) == start + 13
        # logging.disable applies too.
        logging.disable(logging.WARNING)
        try:
            testlib.log_burst(10, 10)
            assert crossed(testlib) == start + 13
        finally:
            logging.disable(logging.NOTSET)
    testlib.logging.flush()
    assert len(collect.records) == 13
    # Tracing callsites are filtered the same way.
    logging.getLogger("asyncffi_testlib").setLevel(logging.ERROR)
    logging.getLogger(LOGS).setLevel(logging.NOTSET)
    testlib.trace_event("skipped")
    assert crossed(testlib) == start + 13


def test_levels_set_behind_loggings_back_apply_after_refresh(
    testlib: asyncffi.Library, collect: Collect
) -> None:
    logger = logging.getLogger("asyncffi_testlib")
    logger.level = logging.ERROR  # no hook sees this
    start = crossed(testlib)
    testlib.log_burst(0, 5)
    assert crossed(testlib) == start + 5  # Rust still lets WARNING through...
    testlib.logging.flush()
    assert collect.records == []  # ...and Python drops them
    asyncffi.refresh_log_levels()
    testlib.log_burst(0, 5)
    assert crossed(testlib) == start + 5


def test_a_full_queue_drops_and_counts(testlib: asyncffi.Library, collect: Collect) -> None:
    stats = testlib.logging.stats()
    assert testlib.logging.set_capacity(8) == stats["capacity"]
    try:
        with testlib.logging.hold():
            testlib.log_burst(0, 20)
            now = testlib.logging.stats()
            assert now["dropped"] == stats["dropped"] + 12
            assert now["queued"] == 8
    finally:
        testlib.logging.set_capacity(stats["capacity"])
    testlib.logging.flush()
    assert [r.getMessage() for r in collect.records] == [f"burst {i}" for i in range(8)]


def test_each_library_has_its_own_bridge(testlib: asyncffi.Library, collect: Collect) -> None:
    builtins = asyncffi.demo.library
    start = builtins.logging.stats()["crossed"]
    testlib.log_burst(0, 10)
    assert builtins.logging.stats()["crossed"] == start
    assert builtins.logging is not testlib.logging


def test_records_from_runtime_threads_arrive_without_flushing(
    testlib: asyncffi.Library, collect: Collect, runtime: str
) -> None:
    asyncio.run(testlib.log_later(50, runtime=runtime))
    deadline = time.monotonic() + 30
    while len(collect.records) < 50 and time.monotonic() < deadline:
        time.sleep(0.01)  # the bridge's thread delivers them
    assert [r.getMessage() for r in collect.records] == [f"late {i}" for i in range(50)]
    assert {r.name for r in collect.records} == {"testlib.later"}


@pytest.mark.parametrize("runtime", ["tokio", "async-std"])
def test_a_task_logging_keeps_its_schedule_while_python_holds_the_gil(
    testlib: asyncffi.Library, collect: Collect, runtime: str
) -> None:
    ticks = 150  # 1.5 s of 10 ms ticks, a WARNING record each
    held: List[float] = []

    async def main() -> float:
        worst = asyncio.ensure_future(testlib.log_ticks(0.01, ticks, runtime=runtime))
        await asyncio.sleep(0.1)
        holder = threading.Thread(target=lambda: held.append(hold_gil(1.0)))
        holder.start()
        result = await worst
        holder.join()
        return float(result)

    worst = asyncio.run(main())
    assert held and held[0] >= 1.0
    # A thread waiting for the GIL to log would fall a whole hold behind.
    assert worst < 0.4, f"the Rust timer fell {worst:.3f} s behind while the GIL was held"
    testlib.logging.flush()
    assert len(collect.records) == ticks
    assert [r.tick for r in collect.records] == list(range(1, ticks + 1))  # type: ignore[attr-defined]


@pytest.mark.parametrize("runtime", ["tokio", "async-std"])
def test_records_logged_just_before_exit_arrive(runtime: str) -> None:
    script = textwrap.dedent(
        f"""
        import asyncio, logging, sys
        import asyncffi
        logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(name)s %(message)s")
        lib = asyncffi.load({find_testlib()!r})
        asyncio.run(lib.log_later(200, runtime={runtime!r}))
        lib.log_burst(0, 300)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert (done.returncode, done.stderr) == (0, "")
    lines = done.stdout.splitlines()
    assert lines == [f"testlib.later late {i}" for i in range(200)] + [
        f"{LOGS} burst {i}" for i in range(300)
    ]
