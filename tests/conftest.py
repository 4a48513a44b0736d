"""Shared fixtures: every async test runs on asyncio and uvloop; ``runtime`` and ``wake``
parametrize over the Rust runtimes and the wake strategies; after every test the live counters
must return to zero (nothing leaked on the Rust side)."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import textwrap
import time
from typing import Any, Callable, Dict, Iterator, Mapping

import asyncffi
import pytest
from asyncffi import _runtime

try:
    import uvloop
except ImportError:  # PyPy or Windows: asyncio only
    uvloop = None

LOOPS: Dict[str, Callable[[], asyncio.AbstractEventLoop]] = {"asyncio": asyncio.new_event_loop}
if uvloop is not None:
    LOOPS["uvloop"] = uvloop.new_event_loop

RUNTIMES = ["tokio", "async-std", "loop"]
WAKES = ["threadsafe", "fd"]
#: Every live counter the Rust side reports (all must return to zero).
LIVE = tuple(name for name in asyncffi.stats() if name.startswith("live_"))


def pytest_asyncio_loop_factories(
    config: Any, item: Any
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    return LOOPS


@pytest.fixture(params=RUNTIMES)
def runtime(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=WAKES)
def wake(request: pytest.FixtureRequest) -> Iterator[str]:
    """Runs the test with ports of this wake strategy. The strategy is process-wide and fixed
    once the first port opens (``configure`` refuses to change it), so the test suite sets the
    private state directly: safe here because every port is closed between tests."""
    previous = _runtime.state.wake
    _runtime.state.wake = request.param
    yield str(request.param)
    _runtime.state.wake = previous


def live_counters() -> Dict[str, int]:
    s = asyncffi.stats()
    return {k: s[k] for k in LIVE}


def wait_until_idle(timeout: float = 5.0) -> Dict[str, int]:
    """Waits for the live counters to fall to zero; returns their last reading."""
    deadline = time.monotonic() + timeout
    while True:
        gc.collect()
        live = live_counters()
        if not any(live.values()) or time.monotonic() > deadline:
            return live
        time.sleep(0.01)


async def wait_for_stat(name: str, target: int, timeout: float = 5.0) -> int:
    """Waits (on the loop) until ``stats()[name]`` reaches ``target``; returns the value."""
    deadline = time.monotonic() + timeout
    while True:
        value = asyncffi.stats()[name]
        if value == target or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.005)


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """After the test (and its event loop) is torn down, nothing is left alive in Rust."""
    before = wait_until_idle()
    assert not any(before.values()), f"a previous test leaked: {before}"
    yield
    after = wait_until_idle()
    assert not any(after.values()), f"live counters did not return to zero: {after}"


def run_python(code: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Runs ``code`` in a fresh interpreter; returns the finished process."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
