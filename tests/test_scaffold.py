"""``python -m asyncffi new``: the project it writes builds and passes its own tests as it is.

The end-to-end test (marked ``scaffold``: it builds a wheel, so scripts/test.sh runs it once, on
Python 3.11, rather than in every interpreter's suite) scaffolds a project into a temporary
directory, depending on this checkout's crate, installs it with ``pip install`` (maturin in an
isolated build environment, as a user's ``pip install .``), and runs the project's pytest
against the installed package. Cargo builds into ``CARGO_TARGET_DIR`` (default
``rust/target``), and the project starts from this workspace's ``Cargo.lock``, so that the
crates it shares with the test library are compiled once.

The other tests check the command's choices without building anything.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest
from asyncffi import _scaffold
from conftest import ROOT


def new(*args: str, cwd: pathlib.Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "asyncffi", "new", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.scaffold
def test_new_project_builds_and_passes_its_tests(tmp_path: pathlib.Path) -> None:
    created = new("scaffold-check", "--asyncffi-path", str(ROOT), cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    project = tmp_path / "scaffold-check"
    assert (project / "python" / "scaffold_check" / "__init__.pyi").is_file()
    shutil.copy(ROOT / "rust" / "Cargo.lock", project / "Cargo.lock")

    fmt = subprocess.run(
        ["cargo", "fmt", "--check"], cwd=project, capture_output=True, text=True, timeout=120
    )
    assert fmt.returncode == 0, f"the template's Rust is not rustfmt-clean:\n{fmt.stdout}"

    env = dict(os.environ)
    env.setdefault("CARGO_TARGET_DIR", str(ROOT / "rust" / "target"))
    site = tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-v", "--no-deps", "--target", str(site), "."],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    log = build.stdout + build.stderr
    assert build.returncode == 0, log[-6000:]
    warnings = [line for line in log.splitlines() if re.match(r"\s*warning:", line)]
    assert not warnings, "cargo warned while building the project:\n" + "\n".join(warnings)

    env["PYTHONPATH"] = str(site)
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert tests.returncode == 0, tests.stdout[-6000:] + tests.stderr[-2000:]
    summary = re.search(r"(\d+) passed", tests.stdout)
    assert summary and int(summary.group(1)) >= 9, tests.stdout[-2000:]
    assert "failed" not in tests.stdout.splitlines()[-1]


def test_new_depends_on_crates_io_by_default(tmp_path: pathlib.Path) -> None:
    created = new("mylib", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    cargo = (tmp_path / "mylib" / "Cargo.toml").read_text()
    assert f'\nasyncffi = "{_scaffold.CRATE_REQUIREMENT}"\n' in cargo
    assert 'asyncffi = "0.1"' in created.stdout
    pyproject = (tmp_path / "mylib" / "pyproject.toml").read_text()
    assert '"asyncffi>=0.1,<0.2"' in pyproject
    assert 'module-name = "mylib._native"' in pyproject
    assert sorted(p.relative_to(tmp_path / "mylib").as_posix() for p in tmp_path.rglob("*.*")) == [
        ".gitignore",
        "Cargo.toml",
        "README.md",
        "pyproject.toml",
        "python/mylib/__init__.py",
        "python/mylib/__init__.pyi",
        "python/mylib/py.typed",
        "src/lib.rs",
        "tests/test_mylib.py",
    ]


def test_new_takes_a_checkout_or_the_crate_itself(tmp_path: pathlib.Path) -> None:
    crate = ROOT / "rust" / "asyncffi"
    for i, where in enumerate([ROOT, crate]):
        created = new("mylib", "--path", f"p{i}", "--asyncffi-path", str(where), cwd=tmp_path)
        assert created.returncode == 0, created.stderr
        cargo = (tmp_path / f"p{i}" / "Cargo.toml").read_text()
        assert f'asyncffi = {{ path = "{crate}" }}' in cargo


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["2fast"], "is not a project name"),
        (["my lib"], "is not a project name"),
        (["MyLib"], "is not a project name"),
        (["asyncio"], "would shadow the Python module 'asyncio'"),
        (["asyncffi"], "would shadow"),
        (["class"], "would shadow"),
        (["mylib", "--asyncffi-path", "."], "no asyncffi crate in"),
    ],
)
def test_new_refuses(args: list[str], message: str, tmp_path: pathlib.Path) -> None:
    created = new(*args, cwd=tmp_path)
    assert created.returncode == 2
    assert message in created.stderr
    assert not list(tmp_path.iterdir())


def test_new_leaves_an_existing_project_alone(tmp_path: pathlib.Path) -> None:
    (tmp_path / "mylib").mkdir()
    (tmp_path / "mylib" / "Cargo.toml").write_text("mine")
    created = new("mylib", cwd=tmp_path)
    assert created.returncode == 2 and "is not an empty directory" in created.stderr
    assert (tmp_path / "mylib" / "Cargo.toml").read_text() == "mine"


def test_names_with_dashes_make_an_underscored_package(tmp_path: pathlib.Path) -> None:
    assert _scaffold.package_name("my-lib") == "my_lib"
    (tmp_path / "empty").mkdir()
    created = new("my-lib", "--path", "empty", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    assert 'name = "my-lib"' in (tmp_path / "empty" / "Cargo.toml").read_text()
    assert (tmp_path / "empty" / "tests" / "test_my_lib.py").is_file()
    assert "import my_lib\n" in (tmp_path / "empty" / "tests" / "test_my_lib.py").read_text()
