"""Opens cdylibs built on asyncffi with the cffi module built from the headers (``_ffi.py``).

Every asyncffi cdylib exports the core C ABI (``rust/include/asyncffi.h``); ``open_native``
opens one by explicit path, never by a search, and refuses it unless its ABI version is the one
this package speaks. ``abi`` holds the ABI's constants, which are the same for every library.
The ``Library`` that owns each opened cdylib is in ``_library.py``; ``lib`` here is the core-ABI
handle of the built-ins' library (``asyncffi.demo``), for tests that call the C ABI raw.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Optional, cast

from ._ffi import ffi

#: The C ABI version this package speaks. Version 4: ids carry the tag of their library.
#: Version 5: the runtimes' names and flavours come from the library (``affi_runtimes``).
ABI_VERSION = 6

if TYPE_CHECKING:
    # The core ABI's typed view, generated from asyncffi.h by build_ffi.py.
    from ._abi import NativeLib as NativeLib


def library_path(directory: Optional[str] = None) -> str:
    """The path of the shipped cdylib (``asyncffi/_native/lib_native.*``)."""
    directory = directory or os.path.join(os.path.dirname(os.path.abspath(__file__)), "_native")
    try:
        names = sorted(n for n in os.listdir(directory) if n.startswith("lib_native."))
    except FileNotFoundError:
        names = []
    if not names:
        raise ImportError(
            f"asyncffi's native library is missing from {directory}: install the package with "
            "`pip install .` (which builds it), not by putting python/ on sys.path"
        )
    return os.path.join(directory, names[0])


def open_native(path: str) -> NativeLib:
    """Opens the asyncffi cdylib at ``path`` (its core ABI).

    :raises ImportError: the file cannot be opened, is not an asyncffi library, or speaks
        another C ABI version (the message names both versions).
    """
    try:
        native = ffi.dlopen(path)
    except OSError as exc:
        raise ImportError(f"cannot open the library {path}: {exc}") from exc
    try:
        abi_version = native.affi_abi_version
    except (AttributeError, ffi.error):
        raise ImportError(
            f"{path} is not an asyncffi library: it exports no affi_abi_version"
        ) from None
    version = abi_version()
    if version != ABI_VERSION:
        raise ImportError(
            f"the library {path} speaks asyncffi C ABI version {version}, this asyncffi "
            f"package speaks version {ABI_VERSION}: rebuild the library against this asyncffi, "
            "or install the asyncffi it was built for"
        )
    return cast("NativeLib", native)


class _Constants:
    """The ABI's constants (``AFFI_*``), read from the cffi declarations: no library needed."""

    def __getattr__(self, name: str) -> int:
        value: int = ffi.integer_const(name)
        setattr(self, name, value)
        return value


#: The C ABI's constants, the same for every asyncffi library.
abi = cast("NativeLib", _Constants())


def __getattr__(name: str) -> Any:
    # ``lib``: the built-ins' handle, opened by ``asyncffi.demo``'s library on first use.
    if name == "lib":
        from ._library import builtins

        return builtins().lib
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if TYPE_CHECKING:
    lib: NativeLib

__all__ = ["ABI_VERSION", "abi", "ffi", "lib", "library_path", "open_native"]
