"""A Rust program that runs Python (examples/rust-app, built once by scripts/test.sh): run as a
subprocess against this interpreter, its output and exit status checked, for each way its main
ends (with no live counter left at exit), and the errors when no usable Python is found."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import pytest

ROOT = Path(__file__).resolve().parent.parent
CPYTHON = sys.implementation.name == "cpython"
needs_cpython = pytest.mark.skipif(not CPYTHON, reason="the host embeds CPython's C API")

PROGRESS = [
    "slept",
    "main on main",  # the default runtime: the main is polled on the event loop's thread
    "progress 1/3",
    "progress 2/3",
    "progress 3/3",
    'fetched "body of https://example.invalid"',
    'on "uvloop"',
]
#: The live counters at exit: nothing left (no task, call, callable, port or value).
NO_LEAK = "live {}"


@pytest.fixture(scope="module")
def app() -> str:
    """The example program: ``ASYNCFFI_RUST_APP``, else its release build in the workspace."""
    path = os.environ.get("ASYNCFFI_RUST_APP") or str(
        ROOT / "rust" / "target" / "release" / "rust-app"
    )
    if not os.path.exists(path):
        pytest.fail(
            f"the example program is missing at {path}: build it with `cd examples/rust-app && "
            "CARGO_TARGET_DIR=../../rust/target cargo build --release` (scripts/test.sh does), "
            "or point ASYNCFFI_RUST_APP at it",
            pytrace=False,
        )
    return path


#: The example program by the runtime of its main: the default (``rust-app``, no runtime
#: chosen) and ``runtime = "tokio"`` (``rust-app-tokio``, whose main resumes on tokio's workers).
PROGRAMS = {
    "default": ("rust-app", "main on main"),
    "tokio": ("rust-app-tokio", "main on asyncffi-tokio"),
}


@pytest.fixture(params=sorted(PROGRAMS), scope="module")
def program(request: pytest.FixtureRequest, app: str) -> tuple[str, List[str]]:
    """The example program on each runtime, and the output of its work on that runtime."""
    name, thread = PROGRAMS[request.param]
    progress = [thread if line == "main on main" else line for line in PROGRESS]
    return os.path.join(os.path.dirname(app), name), progress


def environment(python: str = sys.executable) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["ASYNCFFI_PYTHON"] = python
    env["RUST_APP_LIVE"] = "1"  # the example prints its live counters at exit
    return env


def run(
    app: str, *args: str, env: Dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [app, *args],
        env=env or environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def lines(text: str) -> List[str]:
    return text.splitlines()


@needs_cpython
def test_ok_exits_0_with_the_output_of_rust_and_python(program: tuple[str, List[str]]) -> None:
    app, progress = program
    done = run(app)
    assert (done.returncode, done.stderr) == (0, "")
    assert lines(done.stdout) == [*progress, NO_LEAK]


@needs_cpython
def test_a_rust_error_is_printed_with_its_kind_and_exits_1(program: tuple[str, List[str]]) -> None:
    app, progress = program
    done = run(app, "err")
    assert done.returncode == 1
    assert done.stderr == "Error: app: the work failed\n"
    assert lines(done.stdout) == [*progress, NO_LEAK]


@needs_cpython
def test_a_python_exception_is_printed_with_its_traceback_and_exits_1(
    program: tuple[str, List[str]],
) -> None:
    app, progress = program
    done = run(app, "pyerr")
    assert done.returncode == 1
    assert done.stderr.startswith("Traceback (most recent call last):\n")
    assert "json.decoder.JSONDecodeError: Expecting property name" in done.stderr
    # The traceback starts in the code that raised, not in the loop or asyncffi.
    assert lines(done.stderr)[1].startswith(f'  File "{json.__file__}", line ')
    assert lines(done.stdout) == [*progress, NO_LEAK]


@needs_cpython
def test_a_python_coroutine_s_exception_is_printed_from_the_coroutine_and_exits_1(
    program: tuple[str, List[str]],
) -> None:
    app, progress = program
    done = run(app, "pyasyncerr")
    assert done.returncode == 1
    # The coroutine ran as a task of its own: its frame is the first, and the only one.
    assert lines(done.stderr) == [
        "Traceback (most recent call last):",
        '  File "<failing>", line 2, in fail',
        "ValueError: raised by a coroutine",
    ]
    assert lines(done.stdout) == [*progress, NO_LEAK]


@needs_cpython
def test_a_panic_prints_its_message_and_exits_101(program: tuple[str, List[str]]) -> None:
    app, progress = program
    done = run(app, "panic")
    assert done.returncode == 101
    assert done.stderr == "panic: the app panicked\n"
    assert lines(done.stdout) == [*progress, NO_LEAK]


@needs_cpython
def test_sigint_cancels_the_main_with_python_work_in_flight_and_exits_130(
    program: tuple[str, List[str]],
) -> None:
    app, progress = program
    proc = subprocess.Popen(
        [app, "sleep"],
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:
            seen.append(line.rstrip("\n"))
            if line == "sleeping\n":
                break
        assert seen == [*progress, "sleeping"]
        time.sleep(0.2)  # the 60 s asyncio.sleep is in flight
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert (proc.returncode, out, err) == (130, NO_LEAK + "\n", "")
        assert time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@needs_cpython
def test_the_interpreter_is_found_through_an_active_virtual_environment(
    app: str, tmp_path: Path
) -> None:
    if sys.prefix == sys.base_prefix:
        pytest.skip("this interpreter is not a virtual environment's")
    env = {k: v for k, v in os.environ.items() if k != "ASYNCFFI_PYTHON"}
    env["VIRTUAL_ENV"] = sys.prefix
    done = run(app, env=env)
    assert (done.returncode, done.stderr) == (0, "")


def refused(app: str, python: str, env: Dict[str, str] | None = None) -> str:
    done = run(app, env=env or environment(python))
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("error: cannot run Python: "), done.stderr
    return done.stderr


def test_a_missing_interpreter_names_what_was_tried(app: str) -> None:
    err = refused(app, "/nonexistent/python3")
    assert "/nonexistent/python3 (ASYNCFFI_PYTHON): no such file" in err
    assert "Fix: point ASYNCFFI_PYTHON at a CPython 3.9+" in err


def test_no_interpreter_at_all(app: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("ASYNCFFI_PYTHON", "VIRTUAL_ENV")}
    env["PATH"] = str(tmp_path)
    err = refused(app, "", env=env)
    assert "nothing: no interpreter configured, ASYNCFFI_PYTHON and VIRTUAL_ENV unset" in err


def fake_python(tmp_path: Path, *fields: str) -> str:
    """A program that answers the host's question as an interpreter with ``fields`` would."""
    path = tmp_path / "python3"
    answer = "\\000".join(fields)
    path.write_text(f"#!/bin/sh\nprintf '{answer}'\n")
    path.chmod(0o755)
    return str(path)


def test_a_static_only_build_is_refused(app: str, tmp_path: Path) -> None:
    python = fake_python(
        tmp_path, "cpython", "3.11.7", "11", "", "/opt/lib", "libpython3.11.a", "", "/opt/py", "x"
    )
    err = refused(app, python)
    assert 'no shared libpython (LDLIBRARY is "libpython3.11.a"' in err
    assert "static-only build" in err


def test_an_old_python_is_refused(app: str, tmp_path: Path) -> None:
    python = fake_python(tmp_path, "cpython", "3.8.18", "8", "", "/l", "l.so", "", "/p", "x")
    assert "it is CPython 3.8.18, older than 3.9" in refused(app, python)


def test_a_python_without_asyncffi_is_refused(app: str, tmp_path: Path) -> None:
    lib = tmp_path / "libpython3.11.so"
    lib.write_bytes(b"")
    python = fake_python(
        tmp_path, "cpython", "3.11.7", "11", "", str(tmp_path), lib.name, "", "/opt/py", ""
    )
    assert "asyncffi is not installed in CPython 3.11.7: run `/opt/py -m pip install" in refused(
        app, python
    )


def test_another_implementation_is_refused(app: str, tmp_path: Path) -> None:
    if CPYTHON:
        python = fake_python(tmp_path, "pypy", "3.10.14", "10", "", "/l", "l.so", "", "/p", "x")
    else:
        python = sys.executable
    assert ", not CPython (the host needs CPython's C API)" in refused(app, python)


@needs_cpython
def test_an_asyncffi_of_another_abi_is_refused(app: str, tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(
        "import asyncffi._loader\nasyncffi._loader.ABI_VERSION = 999\n"
    )
    env = environment()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")]))
    done = run(app, env=env)
    assert done.returncode == 1
    assert "speaks asyncffi C ABI version" in done.stderr
    assert "this asyncffi package speaks version 999" in done.stderr


def test_program_outside_a_rust_program_is_an_error() -> None:
    import asyncffi

    with pytest.raises(RuntimeError, match="not a Rust program run by asyncffi::python::run"):
        asyncffi.program()


@needs_cpython
def test_the_plain_function_form_keywords_attributes_code_and_async_std(app: str) -> None:
    """``asyncffi::python::run`` with the interpreter given explicitly (it wins over
    ``ASYNCFFI_PYTHON``) and the Rust main on async-std."""
    env = environment("/nonexistent/python3")
    done = run(os.path.join(os.path.dirname(app), "rust-app-plain"), sys.executable, env=env)
    assert (done.returncode, done.stderr) == (0, "")
    assert lines(done.stdout) == [
        'dumps "[1,\\"a\\"]"',
        f"major {sys.version_info.major}",
        "loop refused: TypeError",
        "twice 4 6",
        "broken SyntaxError",
    ]


@needs_cpython
def test_finalization_is_bounded(app: str) -> None:
    """A Python thread that never ends does not keep the program from exiting."""
    started = time.monotonic()
    done = run(os.path.join(os.path.dirname(app), "rust-app-plain"), sys.executable, "hang")
    assert done.returncode == 0
    assert done.stderr == "error: the Python interpreter did not finalize within 1s\n"
    assert lines(done.stdout)[-1] == "broken SyntaxError"
    assert time.monotonic() - started < 20


@pytest.fixture(scope="module")
def harness(app: str) -> str:
    """The example's integration tests under ``asyncffi::testing`` (``harness = false``):
    ``ASYNCFFI_RUST_APP_HARNESS``, else the newest build next to the example program."""
    path = os.environ.get("ASYNCFFI_RUST_APP_HARNESS")
    if not path:
        deps = Path(app).parent / "deps"
        built = [
            p for p in deps.glob("rust_app_harness-*") if p.suffix == "" and os.access(p, os.X_OK)
        ]
        if not built:
            pytest.fail(
                f"the example's test binary is missing in {deps}: build it with `cd "
                "examples/rust-app && CARGO_TARGET_DIR=../../rust/target cargo test --release "
                "--no-run` (scripts/test.sh does), or point ASYNCFFI_RUST_APP_HARNESS at it",
                pytrace=False,
            )
        path = str(max(built, key=lambda p: p.stat().st_mtime))
    return path


def summary(passed: int, failed: int, ignored: int, filtered: int) -> str:
    """libtest's summary line, up to the time it took."""
    result = "FAILED" if failed else "ok"
    return (
        f"test result: {result}. {passed} passed; {failed} failed; {ignored} ignored; "
        f"0 measured; {filtered} filtered out; finished in "
    )


@needs_cpython
def test_the_harness_runs_every_test_and_reports_as_libtest(harness: str) -> None:
    done = run(harness)
    assert (done.returncode, done.stderr) == (101, "")
    out = lines(done.stdout)
    assert out[:10] == [
        "",
        "running 8 tests",
        "test sleeps ... ok",
        "test calls_back_into_the_binary ... ok",
        "test lookups::a_module_made_again ... ok",
        "test lookups::kept_across_runs_1 ... ok",
        "test lookups::kept_across_runs_2 ... ok",
        "test failing::fails ... FAILED",
        "test failing::panics ... FAILED",
        "test failing::times_out ... ignored",
    ]
    assert "---- failing::fails stdout ----" in out
    assert "Error: check: expected 1, got 2" in out
    assert "panicked: a test panicked" in out
    assert out[-6:-2] == ["failures:", "    failing::fails", "    failing::panics", ""]
    assert out[-2].startswith(summary(5, 2, 1, 0)), out[-2]


@needs_cpython
def test_the_harness_lists_and_filters(harness: str) -> None:
    listed = run(harness, "--list", "failing")
    assert listed.returncode == 0
    assert lines(listed.stdout) == [
        "failing::fails: test",
        "failing::panics: test",
        "failing::times_out: test",
        "",
        "3 tests, 0 benchmarks",
    ]
    done = run(harness, "sleeps", "--exact")
    assert (done.returncode, done.stderr) == (0, "")
    assert lines(done.stdout)[1:3] == ["running 1 test", "test sleeps ... ok"]
    assert lines(done.stdout)[-2].startswith(summary(1, 0, 0, 7))


@needs_cpython
def test_the_harness_times_out_a_test_and_runs_ignored_ones_on_request(harness: str) -> None:
    started = time.monotonic()
    done = run(harness, "--ignored", "--timeout", "0.5")
    assert (done.returncode, done.stderr) == (101, "")
    out = lines(done.stdout)
    assert out[1:3] == ["running 1 test", "test failing::times_out ... FAILED"]
    assert "timed out after 500ms" in out
    assert out[-2].startswith(summary(0, 1, 0, 7))
    assert time.monotonic() - started < 20


@needs_cpython
@pytest.mark.parametrize("runtime", ["default", "tokio", "loop"])
def test_the_benchmark_program_awaits_python_on_each_runtime(app: str, runtime: str) -> None:
    """``rust-app-bench`` (benchmarks/rust_awaits_python.py): the Rust main on the default
    runtime, tokio or ``loop`` awaits a Python coroutine one call after another and 1,000 at a
    time."""
    bench = os.path.join(os.path.dirname(app), "rust-app-bench")
    for mode, n, total in (("seq", "100", 4950), ("conc", "2000", 2 * 499500)):
        done = run(bench, runtime, mode, n, "1")
        assert (done.returncode, done.stderr) == (0, ""), done.stderr
        assert done.stdout.endswith(f" ns/await (sum {total})\n"), done.stdout
