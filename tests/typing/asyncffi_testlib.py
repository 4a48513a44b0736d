"""The test library (``rust/testlib``) as a package author ships one: a module that loads the
cdylib and re-exports what its manifest lists, with stubs (``asyncffi_testlib.pyi``) generated
from the same manifest (``python -m asyncffi stubs asyncffi_testlib``; ``build_ffi.py --check``
fails when they drift). ``ASYNCFFI_TESTLIB`` names the cdylib (default: the release build)."""

from __future__ import annotations

import os
import pathlib

import asyncffi

_ROOT = pathlib.Path(__file__).resolve().parent.parent.parent

#: The test library, loaded with its hand-written functions' header (as the tests load it).
library = asyncffi.load(
    os.environ.get("ASYNCFFI_TESTLIB")
    or _ROOT / "rust" / "target" / "release" / "libasyncffi_testlib.so",
    header=_ROOT / "rust" / "include" / "asyncffi_testlib.h",
)

for _name, _export in {**library.exports, **library.types}.items():
    if isinstance(_export, type) or (callable(_export) and not _name[:1].isupper()):
        _export.__module__ = __name__
    globals()[_name] = _export

__all__ = sorted({*library.exports, *library.types})
