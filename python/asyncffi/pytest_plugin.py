"""A pytest plugin for packages built on asyncffi, installed with it (entry point ``pytest11``
``asyncffi``) and inactive until asked:

- **Leak check.** ``--asyncffi-leaks`` (or ``asyncffi_leaks = true`` in the ini file) checks
  every test, ``@pytest.mark.asyncffi_leaks`` one test (``timeout=`` seconds to wait for the
  counters to settle, default 5), the ``asyncffi_no_leaks`` fixture likewise: once the test and
  its fixtures are torn down (its event loop closed), every live counter of every loaded
  library (``Library.stats()``: Rust tasks, values, ports, objects, lent callables and
  iterators, calls into Python) must be back at zero, else the test errors with the counters
  that were not, by library. Work already alive before the test errors it too (a previous
  test leaked). ``@pytest.mark.asyncffi_leaks(False)`` exempts one test; the ini value
  ``asyncffi_leak_timeout`` changes the default wait.
- **Every loop.** ``--asyncffi-loops=all`` (or ``asyncffi_loops = all``, or a list such as
  ``asyncio,uvloop``) runs every async test of pytest-asyncio once per event loop: asyncio's
  and uvloop's where it is installed. The ``asyncffi_loop_factory`` fixture gives sync tests
  the same loops, one test per loop, as factories (``loop_factories()`` is the dict).
- **Exit checks.** ``run_python(code)`` runs code in a fresh interpreter;
  ``assert_clean_exit(proc, status=0)`` fails, showing both streams, unless it exited with
  ``status`` and wrote nothing to stderr; ``run_clean(code)`` does both (also as the
  ``asyncffi_run_clean`` fixture).

The module imports asyncffi (which loads the built-ins' cdylib) only once a check needs it.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import subprocess
import sys
import textwrap
import time
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import pytest

LoopFactory = Callable[[], asyncio.AbstractEventLoop]

#: How long a leak check waits for the counters to settle by default, in seconds (a Rust task
#: is dropped just after it delivers its result; a closed loop's port a moment later).
DEFAULT_TIMEOUT = 5.0


# --- live counters ----------------------------------------------------------------------------


def live_counters() -> Dict[str, Dict[str, int]]:
    """The non-zero live counters (``live_*``) of every loaded library, by library name."""
    import asyncffi

    out: Dict[str, Dict[str, int]] = {}
    for library in asyncffi.libraries():
        live = {k: v for k, v in library.stats().items() if k.startswith("live_") and v}
        if live:
            out[library.name] = live
    return out


def wait_until_idle(timeout: float = DEFAULT_TIMEOUT) -> Dict[str, Dict[str, int]]:
    """Waits (collecting garbage) for every library's live counters to fall to zero; returns
    what is still alive then (empty when idle)."""
    deadline = time.monotonic() + timeout
    while True:
        gc.collect()
        live = live_counters()
        if not live or time.monotonic() > deadline:
            return live
        time.sleep(0.01)


def describe(live: Mapping[str, Mapping[str, int]]) -> str:
    """``live`` (as ``live_counters`` returns it) in one line: ``lib: live_tasks=1, ...``."""
    return "; ".join(
        f"{name}: " + ", ".join(f"{k}={v}" for k, v in sorted(counters.items()))
        for name, counters in sorted(live.items())
    )


# --- event loops --------------------------------------------------------------------------------


def loop_factories(names: Optional[Sequence[str]] = None) -> Dict[str, LoopFactory]:
    """The event loops to test on, by name: asyncio's, and uvloop's where it is installed
    (``names`` picks some: ``"asyncio"``, ``"uvloop"``; ``None`` or ``["all"]`` is all).

    :raises pytest.UsageError: an unknown name, or uvloop named but not installed.
    """
    available: Dict[str, LoopFactory] = {"asyncio": asyncio.new_event_loop}
    try:
        import uvloop
    except ImportError:  # PyPy, Windows: asyncio only
        pass
    else:
        available["uvloop"] = uvloop.new_event_loop
    if names is None or list(names) == ["all"]:
        return available
    chosen: Dict[str, LoopFactory] = {}
    for name in names:
        if name not in available:
            known = "asyncio, uvloop" if name != "uvloop" else "uvloop (not installed)"
            raise pytest.UsageError(f"asyncffi loops: {name!r} is not one of {known}")
        chosen[name] = available[name]
    return chosen


def _policies(factories: Mapping[str, LoopFactory]) -> Dict[str, Any]:
    """The loop policies of ``factories`` (for pytest-asyncio releases before the hook)."""
    policies: Dict[str, Any] = {"asyncio": asyncio.DefaultEventLoopPolicy}
    if "uvloop" in factories:
        import uvloop

        policies["uvloop"] = uvloop.EventLoopPolicy
    return {name: policies[name] for name in factories}


class _EveryLoop:
    """Registered when ``asyncffi_loops`` is set: pytest-asyncio runs each async test once per
    loop, through its ``pytest_asyncio_loop_factories`` hook (1.5+) or, on older releases, a
    parametrized ``event_loop_policy`` fixture."""

    def __init__(self, factories: Dict[str, LoopFactory]) -> None:
        self.factories = factories

    def pytest_asyncio_loop_factories(self, config: Any, item: Any) -> Mapping[str, LoopFactory]:
        return self.factories


class _EveryPolicy:
    """The same as ``_EveryLoop`` for pytest-asyncio before 1.5 (Python 3.9)."""

    def __init__(self, factories: Dict[str, LoopFactory]) -> None:
        self.policies = _policies(factories)

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if inspect.iscoroutinefunction(metafunc.function):
            metafunc.parametrize("event_loop_policy", list(self.policies), indirect=True)

    @pytest.fixture(scope="session")
    def event_loop_policy(self, request: pytest.FixtureRequest) -> asyncio.AbstractEventLoopPolicy:
        """The policy pytest-asyncio makes the test's loop with (asyncio's for sync tests)."""
        policy: asyncio.AbstractEventLoopPolicy = self.policies[
            getattr(request, "param", "asyncio")
        ]()
        return policy


# --- subprocess exit checks ---------------------------------------------------------------------


def run_python(
    code: str,
    *,
    timeout: float = 60.0,
    args: Sequence[str] = (),
    env: Optional[Mapping[str, str]] = None,
) -> subprocess.CompletedProcess[str]:
    """Runs ``code`` (dedented) in a fresh interpreter, this one's executable, with ``args``
    after it; returns the finished process (text output captured)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=None if env is None else dict(env),
        check=False,
    )


def assert_clean_exit(proc: subprocess.CompletedProcess[str], status: int = 0) -> None:
    """Fails (showing stdout and stderr) unless ``proc`` exited with ``status`` and wrote
    nothing to stderr: no traceback, no warning, no "Task was destroyed"."""
    if proc.returncode != status or proc.stderr:
        pytest.fail(
            f"expected exit status {status} and an empty stderr, got status {proc.returncode}\n"
            f"--- stdout ---\n{proc.stdout}--- stderr ---\n{proc.stderr}",
            pytrace=False,
        )


def run_clean(
    code: str,
    *,
    status: int = 0,
    timeout: float = 60.0,
    args: Sequence[str] = (),
    env: Optional[Mapping[str, str]] = None,
) -> subprocess.CompletedProcess[str]:
    """``run_python`` then ``assert_clean_exit``; returns the process (for its stdout)."""
    proc = run_python(code, timeout=timeout, args=args, env=env)
    assert_clean_exit(proc, status)
    return proc


# --- pytest hooks and fixtures ------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("asyncffi")
    group.addoption(
        "--asyncffi-leaks",
        action="store_true",
        default=None,
        help="fail every test that leaves live Rust work behind (asyncffi live counters)",
    )
    group.addoption(
        "--asyncffi-loops",
        default=None,
        help="run async tests once per event loop: 'all' or a list such as 'asyncio,uvloop'",
    )
    parser.addini("asyncffi_leaks", "check every test for live Rust work left behind", type="bool")
    parser.addini(
        "asyncffi_leak_timeout",
        f"seconds the leak check waits for the counters to settle (default {DEFAULT_TIMEOUT})",
        default="",
    )
    parser.addini(
        "asyncffi_loops", "event loops to run async tests on ('all', or names)", default=""
    )


def _loops_option(config: pytest.Config) -> List[str]:
    value = config.getoption("asyncffi_loops") or config.getini("asyncffi_loops") or ""
    return [n for n in str(value).replace(",", " ").split() if n]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "asyncffi_leaks(enabled=True, timeout=5.0): fail the test if it leaves live Rust work "
        "behind (asyncffi's live counters not back at zero)",
    )
    names = _loops_option(config)
    if names:
        factories = loop_factories(names)
        config.stash[_FACTORIES] = factories
        if hasattr(config.pluginmanager.hook, "pytest_asyncio_loop_factories"):
            config.pluginmanager.register(_EveryLoop(factories), "asyncffi-loops")
        elif config.pluginmanager.hasplugin("asyncio"):
            config.pluginmanager.register(_EveryPolicy(factories), "asyncffi-loops")


_FACTORIES = pytest.StashKey[Dict[str, LoopFactory]]()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "asyncffi_loop_factory" in metafunc.fixturenames:
        factories = metafunc.config.stash.get(_FACTORIES, None) or loop_factories()
        metafunc.parametrize("asyncffi_loop_factory", list(factories), indirect=True)


@pytest.fixture
def asyncffi_loop_factory(request: pytest.FixtureRequest) -> LoopFactory:
    """A factory of the event loop this test runs on: the test runs once per loop (those of
    ``--asyncffi-loops``, or every one installed)."""
    factories = request.config.stash.get(_FACTORIES, None) or loop_factories()
    return factories[request.param]


def _leak_check(item: pytest.Item) -> Tuple[bool, float]:
    """Whether ``item`` is checked for leaks, and how long to wait for the counters."""
    marker = item.get_closest_marker("asyncffi_leaks")
    enabled = bool(item.config.getoption("asyncffi_leaks") or item.config.getini("asyncffi_leaks"))
    enabled = enabled or "asyncffi_no_leaks" in getattr(item, "fixturenames", ())
    timeout = float(item.config.getini("asyncffi_leak_timeout") or DEFAULT_TIMEOUT)
    if marker is not None:
        enabled = bool(marker.args[0]) if marker.args else bool(marker.kwargs.get("enabled", True))
        timeout = float(marker.kwargs.get("timeout", timeout))
    return enabled, timeout


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    enabled, timeout = _leak_check(item)
    if enabled:
        before = wait_until_idle(timeout)
        if before:
            raise pytest.fail.Exception(
                "asyncffi: live Rust work from before this test (a previous test or a "
                f"session fixture leaked): {describe(before)}",
                pytrace=False,
            )


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: Optional[pytest.Item]) -> Iterator[None]:
    result = yield  # every fixture of the test torn down: its loops closed
    enabled, timeout = _leak_check(item)
    if enabled:
        after = wait_until_idle(timeout)
        if after:
            raise pytest.fail.Exception(
                f"asyncffi: the test left live Rust work behind: {describe(after)}",
                pytrace=False,
            )
    return result


@pytest.fixture
def asyncffi_no_leaks() -> None:
    """Requesting it turns the leak check on for the test (as ``@pytest.mark.asyncffi_leaks``):
    once the test is torn down, every library's live counters must be back at zero."""


@pytest.fixture
def asyncffi_run_clean() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``run_clean``: runs code in a fresh interpreter and fails the test unless it exits
    with the expected status (0) and an empty stderr."""
    return run_clean
