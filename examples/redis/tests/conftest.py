"""Fixtures for the Redis example's tests: a real ``redis-server`` of their own (Debian's
package), started on a free loopback port in a temporary directory with no persistence, and
stopped and removed after.

Every async test runs on asyncio; those marked ``@pytest.mark.uvloop`` (a representative
handful: commands, concurrency, cancellation, pub/sub, scanning) run on uvloop too, where it
installs (CPython on Unix; pytest-asyncio 1.5+, i.e. Python 3.10+).

Nothing here skips: without ``redis-server`` on PATH or the ``asyncffi_redis`` package built
(``maturin develop --release`` in ``examples/redis``, or ``pip install examples/redis``) the
tests fail, saying what is missing.
"""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from typing import Any, Callable, Dict, Iterator, Mapping, Optional

import asyncffi
import pytest
import pytest_asyncio.plugin

try:
    import uvloop
except ImportError:  # PyPy or Windows: asyncio only
    uvloop = None

LIVE = ("live_tasks", "live_values", "live_ports", "live_objects", "live_py_streams")

LoopFactory = Callable[[], asyncio.AbstractEventLoop]
ASYNCIO: Dict[str, LoopFactory] = {"asyncio": asyncio.new_event_loop}
#: The loops of a test marked ``uvloop``.
LOOPS: Dict[str, LoopFactory] = dict(ASYNCIO)
if uvloop is not None:
    LOOPS["uvloop"] = uvloop.new_event_loop


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "uvloop: run the test on uvloop too (where it installs)")


if hasattr(pytest_asyncio.plugin, "PytestAsyncioSpecs"):  # pytest-asyncio 1.5+

    def pytest_asyncio_loop_factories(config: Any, item: Any) -> Mapping[str, LoopFactory]:
        return LOOPS if item.get_closest_marker("uvloop") else ASYNCIO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """One ``redis-server`` process on ``127.0.0.1:port``, data in ``directory`` (none kept:
    no RDB snapshots, no AOF)."""

    def __init__(self, executable: str, directory: str) -> None:
        self.executable = executable
        self.directory = directory
        self.port = free_port()
        self.process: Optional[subprocess.Popen[bytes]] = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        """Starts the server (on the same port as before, after a ``kill``) and waits until
        it answers PING."""
        log = open(os.path.join(self.directory, "redis.log"), "ab")
        self.process = subprocess.Popen(
            [
                self.executable,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", self.directory,
                "--save", "",
                "--appendonly", "no",
                "--daemonize", "no",
                "--loglevel", "warning",
                "--enable-debug-command", "local",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.directory,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited at start: {self.read_log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not answer in {timeout} s: {self.read_log()}")
            time.sleep(0.02)

    def kill(self) -> None:
        """Kills the server at once (SIGKILL: no goodbye to its clients)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def command(self, *words: str) -> bytes:
        """Sends one inline command over a plain socket; the raw reply's first read."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(" ".join(words).encode() + b"\r\n")
            return s.recv(65536)

    def read_log(self) -> str:
        try:
            with open(os.path.join(self.directory, "redis.log"), errors="replace") as f:
                return f.read()[-2000:]
        except OSError:
            return ""


def redis_executable() -> str:
    found = shutil.which("redis-server")
    if found is None:
        pytest.fail(
            "redis-server is not installed: apt-get install redis-server (the Redis example's "
            "tests need a real server)",
            pytrace=False,
        )
    return found


def make_server() -> Iterator[RedisServer]:
    with tempfile.TemporaryDirectory(prefix="asyncffi-redis-") as directory:
        server = RedisServer(redis_executable(), directory)
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="session")
def server() -> Iterator[RedisServer]:
    """The session's server; emptied before each test that uses it (``url``)."""
    yield from make_server()


@pytest.fixture
def own_server() -> Iterator[RedisServer]:
    """A server for one test alone (to kill, restart, reconfigure)."""
    yield from make_server()


@pytest.fixture
def url(server: RedisServer) -> str:
    assert server.command("FLUSHALL").startswith(b"+OK")
    return server.url


def live_counters() -> Dict[str, int]:
    stats = asyncffi.stats()
    return {k: stats[k] for k in LIVE}


def wait_until_idle(timeout: float = 5.0) -> Dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        gc.collect()
        live = live_counters()
        if not any(live.values()) or time.monotonic() > deadline:
            return live
        time.sleep(0.01)


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """After each test (and its event loop), nothing is left alive in Rust."""
    try:
        import asyncffi_redis  # noqa: F401
    except ImportError as e:
        pytest.fail(
            f"asyncffi_redis is not installed ({e}): build it with `maturin develop --release` "
            "in examples/redis, or `pip install examples/redis`",
            pytrace=False,
        )
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
