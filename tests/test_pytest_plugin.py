"""The pytest plugin shipped with the package (``asyncffi.pytest_plugin``), run on example
test files in a fresh pytest process each (``pytester``): the leak check fails a test that
leaves Rust work alive with the counters in the message and passes one that does not, the
loop option runs each async test once per loop, and the exit check tells a clean exit from
a noisy one."""

from __future__ import annotations

import pytest
from asyncffi.pytest_plugin import assert_clean_exit, run_python
from conftest import LOOPS

# pytest running pytest, the same on every interpreter; the suite itself runs under the plugin
# (pytest.ini) on each of them.
pytestmark = pytest.mark.interpreter_independent

LEAKY = """
import pytest
from asyncffi import demo

kept = []

async def test_keeps_a_rust_object():
    kept.append(demo.Counter())  # alive after the test: live_objects stays at 1
    assert await kept[0].add(1) == 1

@pytest.mark.asyncffi_leaks
async def test_marked_keeps_a_rust_object():
    kept.append(demo.Counter())

@pytest.mark.asyncffi_leaks(False)
async def test_exempted_keeps_a_rust_object():
    kept.append(demo.Counter())

def test_with_the_fixture_keeps_a_rust_object(asyncffi_no_leaks):
    kept.append(demo.Counter())

async def test_closes_its_object():
    with demo.Counter() as counter:
        assert await counter.add(2) == 2
"""
MESSAGE = "*asyncffi: the test left live Rust work behind: asyncffi._native: live_objects=1*"


def _run(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_example=source)
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
        # Leaks are found at once: a short wait keeps the leaky runs quick.
        "asyncffi_leak_timeout = 0.5\n"
    )
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--asyncffi-loops=asyncio", *args
    )


def test_the_leak_option_fails_the_test_that_leaks_naming_the_counters(
    pytester: pytest.Pytester,
) -> None:
    result = _run(pytester, LEAKY, "--asyncffi-leaks", "-k", "test_keeps")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_keeps_a_rust_object*", MESSAGE])
    # What a test left alive fails the next checked test at setup too.
    both = _run(pytester, LEAKY, "--asyncffi-leaks", "-k", "test_keeps or closes")
    both.assert_outcomes(passed=1, errors=3)
    both.stdout.fnmatch_lines(["*live Rust work from before this test*live_objects=1*"])


def test_a_test_that_cleans_up_passes_the_check(pytester: pytest.Pytester) -> None:
    _run(pytester, LEAKY, "--asyncffi-leaks", "-k", "closes").assert_outcomes(passed=1)


def test_without_the_option_only_marked_tests_are_checked(pytester: pytest.Pytester) -> None:
    _run(pytester, LEAKY, "-k", "test_keeps").assert_outcomes(passed=1)
    marked = _run(pytester, LEAKY, "-k", "marked")
    marked.assert_outcomes(passed=1, errors=1)
    marked.stdout.fnmatch_lines([MESSAGE])
    fixture = _run(pytester, LEAKY, "-k", "fixture")
    fixture.assert_outcomes(passed=1, errors=1)
    fixture.stdout.fnmatch_lines([MESSAGE])
    exempted = _run(pytester, LEAKY, "--asyncffi-leaks", "-k", "exempted")
    exempted.assert_outcomes(passed=1)


def test_the_loops_option_runs_async_tests_on_every_loop(pytester: pytest.Pytester) -> None:
    source = """
import asyncio

async def test_loop():
    print("running on", type(asyncio.get_running_loop()).__module__)

def test_factory(asyncffi_loop_factory):
    loop = asyncffi_loop_factory()
    print("made", type(loop).__module__)
    loop.close()
"""
    result = _run(pytester, source, "--asyncffi-loops=all", "-s")  # the last option wins
    result.assert_outcomes(passed=2 * len(LOOPS))
    if "uvloop" in LOOPS:
        result.stdout.fnmatch_lines(["*running on uvloop*"], consecutive=False)
        result.stdout.fnmatch_lines(["*made uvloop*"], consecutive=False)
    result.stdout.fnmatch_lines(["*running on asyncio*"], consecutive=False)
    # An unknown loop is a usage error.
    bad = _run(pytester, source, "--asyncffi-loops=tokio")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR


def test_the_exit_check_tells_a_clean_exit_from_a_noisy_one() -> None:
    assert_clean_exit(run_python("print('ok')"))
    noisy = run_python("import sys; sys.stderr.write('Task was destroyed\\n')")
    with pytest.raises(pytest.fail.Exception, match=r"(?s)empty stderr.*Task was destroyed"):
        assert_clean_exit(noisy)
    with pytest.raises(pytest.fail.Exception, match="got status 3"):
        assert_clean_exit(run_python("raise SystemExit(3)"))
    assert_clean_exit(run_python("raise SystemExit(3)"), status=3)
