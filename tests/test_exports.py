"""The package's surface: public names exported once, the typed library protocol matching the
C declarations, and the cffi module agreeing with the one maturin generates."""

from __future__ import annotations

import importlib
import inspect
import pathlib
import re

import asyncffi
from asyncffi import _ffi, _loader

PRIVATE_MODULES = ["_call", "_errors", "_object", "_runtime"]
ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_each_public_name_is_exported_once() -> None:
    assert sorted(asyncffi.__all__) == sorted(set(asyncffi.__all__))
    for name in asyncffi.__all__:
        assert getattr(asyncffi, name) is not None
    public_classes = [
        obj
        for mod in PRIVATE_MODULES
        for name, obj in vars(importlib.import_module(f"asyncffi.{mod}")).items()
        if inspect.isclass(obj)
        and obj.__module__ == f"asyncffi.{mod}"
        and not name.startswith("_")
        and issubclass(obj, (Exception, asyncffi.RustCall, asyncffi.RustObject))
    ]
    for cls in public_classes:
        assert [n for n in asyncffi.__all__ if getattr(asyncffi, n) is cls] == [cls.__name__]


def _declared_functions() -> set[str]:
    text = "\n".join(p.read_text() for p in (ROOT / "rust" / "include").glob("*.h"))
    return set(re.findall(r"\b(affi_\w+)\(", text))


def test_the_typed_protocol_matches_the_headers() -> None:
    protocol = (
        {
            name
            for name, _ in inspect.getmembers(_loader.NativeLib, inspect.isfunction)
            if name.startswith("affi_")
        }
        if hasattr(_loader, "NativeLib")
        else None
    )
    if protocol is None:  # defined under TYPE_CHECKING: read it from the source
        source = inspect.getsource(_loader)
        protocol = set(re.findall(r"def (affi_\w+)\(", source))
    assert protocol == _declared_functions()


def test_every_declared_function_is_exported_by_the_library() -> None:
    for name in _declared_functions():
        assert callable(getattr(_loader.lib, name)), name


def test_maturins_generated_module_agrees_with_ours() -> None:
    # maturin builds its own cffi module for the built-ins from the same cbindgen.toml; every
    # function it declares must have exactly our type.
    from asyncffi._native import ffi as maturin_ffi
    from asyncffi._native import lib as maturin_lib

    names = [n for n in dir(maturin_lib) if n.startswith("affi_")]
    assert names, "maturin's module declares no function"
    for name in names:
        theirs = maturin_ffi.typeof(getattr(maturin_lib, name)).cname
        ours = _ffi.ffi.typeof(getattr(_loader.lib, name)).cname
        assert theirs == ours, name


def test_py_typed_marker_ships() -> None:
    assert (pathlib.Path(asyncffi.__file__).parent / "py.typed").exists()
