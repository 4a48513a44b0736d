"""The package's type stubs: ``_exports.pyi`` is what the stub generator makes from the built
cdylib's manifest (regenerate it with the command in the failure message), and the package
ships it with its ``py.typed`` marker. ``mypy`` (the repository's configuration) checks
``typed_usage.py`` against them."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import asyncffi_redis
from asyncffi_redis import _exports

SOURCE = pathlib.Path(__file__).resolve().parent.parent / "python" / "asyncffi_redis"


def stubs_check(pyi: pathlib.Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "asyncffi", "stubs", _exports.library.path,
         "-o", str(pyi), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip


def test_the_stubs_in_the_source_tree_are_the_manifests() -> None:
    done = stubs_check(SOURCE / "_exports.pyi")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_installed_package_ships_the_same_stubs_and_py_typed() -> None:
    installed = pathlib.Path(asyncffi_redis.__file__).parent
    assert (installed / "py.typed").is_file()
    done = stubs_check(installed / "_exports.pyi")
    assert done.returncode == 0, done.stdout + done.stderr
    text = (installed / "_exports.pyi").read_text()
    assert "class Client(RustObject):" in text
    assert "def get(self, key: " in text and "-> RustCall[Optional[bytes]]:" in text


def test_a_stale_stub_is_reported(tmp_path: pathlib.Path) -> None:
    stale = tmp_path / "_exports.pyi"
    stale.write_text((SOURCE / "_exports.pyi").read_text().replace("def ping(", "def pong("))
    done = stubs_check(stale)
    assert done.returncode == 1
    assert "+    def ping(" in done.stdout
    assert "is stale: run `python -m asyncffi stubs" in done.stdout
    assert "def pong(" in stale.read_text()  # --check writes nothing
