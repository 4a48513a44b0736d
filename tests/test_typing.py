"""The generated stubs as a type checker uses them: strict mypy refuses a user script's
mistakes (a wrong argument type, a missing ``await``, a wrong ``TypedDict`` key, a variant
that does not exist) with the expected errors and passes the correct script, and
``mypy.stubtest`` finds the shipped stubs (``asyncffi/demo.pyi``, the test library's
``tests/typing/asyncffi_testlib.pyi``) true to the modules at run time.

mypy takes some seconds per run, so these run on one interpreter of the matrix (CPython 3.11,
whose test extra installs mypy)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, Set, Tuple

import pytest
from asyncffi.pytest_plugin import assert_clean_exit
from conftest import ROOT, find_testlib

TYPING = ROOT / "tests" / "typing"

pytestmark = pytest.mark.skipif(
    sys.version_info[:2] != (3, 11) or sys.implementation.name != "cpython",
    reason="mypy runs on CPython 3.11 only (once per CI run)",
)

#: A user script with mistakes; each line with one ends in ``# E:`` and mypy's error codes.
MISTAKES = """\
from typing import List
import asyncffi_testlib as lib
from asyncffi import demo
from asyncffi_testlib import Event, Point, Shape


async def main() -> None:
    await lib.event("7", [])  # E: arg-type
    await demo.add(1, "2")  # E: arg-type
    total: int = demo.add(1, 2)  # E: assignment
    event: Event = lib.event(7, [])  # E: assignment
    good: Event = await lib.event(7, [])
    print(good["nmae"])  # E: typeddict-item
    point: Point = {"x": 1, "y": 2.0, "label": "", "tags": [], "nte": None}  # E: typeddict-unknown-key typeddict-item
    shape: Shape = "Emty"  # E: assignment
    rect: Shape = {"Rect": {"w": 1, "h": "2"}}  # E: assignment
    await lib.by_tag([{"id": 1, "name": "n"}])  # E: typeddict-item
    words: List[int] = lib.words("a b")  # E: assignment
    await demo.sleep(0.1, "tokio")  # E: call-arg
    del total, event, point, shape, rect, words
"""  # noqa: E501


def _env() -> Dict[str, str]:
    env = dict(os.environ)
    env["ASYNCFFI_TESTLIB"] = find_testlib()
    env["MYPYPATH"] = str(TYPING)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TYPING), env.get("PYTHONPATH")]))
    return env


def _expected(script: str) -> Set[Tuple[int, str]]:
    return {
        (number, code)
        for number, line in enumerate(script.splitlines(), 1)
        for match in [re.search(r"# E: ([\w -]+)$", line)]
        if match
        for code in match.group(1).split()
    }


def test_strict_mypy_refuses_the_mistakes_and_passes_the_correct_script(tmp_path: Path) -> None:
    bad = tmp_path / "mistakes.py"
    bad.write_text(MISTAKES)
    good = TYPING / "testlib_usage.py"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "mypy", "--strict", "--no-error-summary"),
            *("--show-error-codes", "--cache-dir", str(tmp_path / "cache"), str(good), str(bad)),
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
        check=False,
    )
    errors = re.findall(r"^(.*?):(\d+): error: .*\[([\w-]+)\]$", done.stdout, re.MULTILINE)
    assert not [e for e in errors if Path(e[0]).name != bad.name], done.stdout
    found = {(int(line), code) for _, line, code in errors}
    assert found == _expected(MISTAKES), done.stdout
    assert done.stdout.count('Maybe you forgot to use "await"?') == 2, done.stdout
    assert done.returncode == 1, done.stdout + done.stderr


def test_stubtest_finds_the_shipped_stubs_true() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "asyncffi.demo", "asyncffi_testlib"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
        check=False,
    )
    assert_clean_exit(done)
    assert "Success" in done.stdout


def test_the_test_library_stubs_are_current(tmp_path: Path) -> None:
    out = tmp_path / "asyncffi_testlib.pyi"
    cmd = [sys.executable, "-m", "asyncffi", "stubs", "asyncffi_testlib", "-o", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env(), check=False)
    assert_clean_exit(done)
    assert out.read_text() == (TYPING / "asyncffi_testlib.pyi").read_text()
    check = [*cmd[:-2], "-o", str(TYPING / "asyncffi_testlib.pyi"), "--check"]
    assert subprocess.run(check, capture_output=True, env=_env(), check=False).returncode == 0
