"""The package's surface: public names exported once, the typed library protocol matching the
C declarations, the installed package built from this checkout's headers, and the cffi module
agreeing with the one maturin generates.

The suite runs from the repository checkout against the installed package: the repository is
found from this file's path, so a package built from other headers fails here."""

from __future__ import annotations

import importlib
import inspect
import pathlib
import re
import sys

import asyncffi
import cffi
from asyncffi import _abi, _ffi, _loader

PRIVATE_MODULES = ["_call", "_errors", "_object", "_runtime"]
ROOT = pathlib.Path(__file__).resolve().parent.parent
#: The headers in the order build_ffi.py feeds them to cffi (the core declarations first).
HEADERS = [ROOT / "rust" / "include" / "asyncffi.h"]


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
    protocol = {
        name
        for name, _ in inspect.getmembers(_abi.NativeLib, inspect.isfunction)
        if name.startswith("affi_")
    }
    assert protocol == _declared_functions()


def test_the_typed_protocol_is_generated_from_the_core_header() -> None:
    # build_ffi.py writes _abi.py from asyncffi.h (and --check fails when it drifts).
    sys.path.insert(0, str(ROOT))
    try:
        import build_ffi
    finally:
        sys.path.remove(str(ROOT))
    generated = build_ffi.protocol_source(build_ffi.cdef_source())
    assert generated == (ROOT / "python" / "asyncffi" / "_abi.py").read_text()
    assert (
        "    def affi_pystream_items(self, object: int, data: bytes | CData, len: int)" in generated
    )
    assert "    AFFI_TAG_OBJECT: int" in generated


def test_every_declared_function_is_exported_by_the_library() -> None:
    for name in _declared_functions():
        assert callable(getattr(_loader.lib, name)), name


def test_the_installed_cffi_module_is_the_repositorys() -> None:
    # build_ffi.py --check ties the repository's _ffi.py to its headers; this ties the installed
    # copy to the repository's (a stale install fails here, not in some later call).
    installed = pathlib.Path(_ffi.__file__).read_text()
    assert installed == (ROOT / "python" / "asyncffi" / "_ffi.py").read_text()


def test_the_installed_package_matches_the_repositorys_headers() -> None:
    ours = cffi.FFI()
    ours.cdef("\n".join(header.read_text() for header in HEADERS))
    declared = _declared_functions()
    assert declared, "the repository's headers declare no function"
    # Every function the headers declare: in the installed library, with the installed cffi
    # module giving it the type the headers give it.
    ours_lib = ours.dlopen(_loader.library_path())
    for name in sorted(declared):
        theirs = _ffi.ffi.typeof(getattr(_loader.lib, name)).cname
        assert theirs == ours.typeof(getattr(ours_lib, name)).cname, name
    # Every type: the same size, the same fields at the same offsets, the same enum values.
    typedefs, _, _ = ours.list_types()
    assert typedefs == _ffi.ffi.list_types()[0]
    for name in typedefs:
        mine, installed = ours.typeof(name), _ffi.ffi.typeof(name)
        assert ours.sizeof(mine) == _ffi.ffi.sizeof(installed), name
        if mine.kind == "struct":
            layout = [(f, ours.offsetof(mine, f), t.type.cname) for f, t in mine.fields]
            assert layout == [
                (f, _ffi.ffi.offsetof(installed, f), t.type.cname) for f, t in installed.fields
            ], name
        elif mine.kind == "enum":
            assert mine.relements == installed.relements, name


def test_maturins_generated_module_agrees_with_ours() -> None:
    # maturin builds its own cffi module from rust/native/cbindgen.toml: the built-ins are made
    # by the macros, which cbindgen does not see, so it declares none of them; every core
    # function it declares must have exactly our type.
    from asyncffi._native import ffi as maturin_ffi
    from asyncffi._native import lib as maturin_lib

    names = [n for n in dir(maturin_lib) if n.startswith("affi_")]
    assert not [n for n in dir(maturin_lib) if n.startswith("asyncffi_native_")]
    for name in names:
        theirs = maturin_ffi.typeof(getattr(maturin_lib, name)).cname
        ours = _ffi.ffi.typeof(getattr(_loader.lib, name)).cname
        assert theirs == ours, name


def test_py_typed_marker_ships() -> None:
    assert (pathlib.Path(asyncffi.__file__).parent / "py.typed").exists()


def test_the_demo_stubs_are_the_built_ins_manifest() -> None:
    # demo.pyi is generated from the shipped library's manifest (build_ffi.py --check fails on
    # drift): the installed library's manifest gives the checked-in text, and names every
    # function of ``asyncffi.demo``.
    from asyncffi import demo
    from asyncffi._stubs import library_stubs

    text = library_stubs(_loader.library_path(), demo.__doc__ or "", "_,bench_")
    assert text == (ROOT / "python" / "asyncffi" / "demo.pyi").read_text()
    for name in demo.__all__:
        assert re.search(rf"^(def|class) {name}\b", text, re.M), name
