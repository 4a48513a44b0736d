"""asyncffi: async Rust and Python's asyncio awaiting each other over a plain C ABI.

Rust functions exported from a cdylib return awaitables (``RustCall``) that run their future
on the library's Rust runtimes and resolve on the calling event loop, or async iterators
(``RustStream``) over a Rust stream. Any number of such cdylibs load side by side
(``asyncffi.load``, ``Library``); ``asyncffi.demo`` holds the built-in functions, and the
README says how it works.
"""

from . import demo as demo
from ._call import PyCallableArg as PyCallableArg
from ._call import RustCall as RustCall
from ._call import RustCallWithCallables as RustCallWithCallables
from ._errors import ClosedError as ClosedError
from ._errors import Error as Error
from ._errors import RustError as RustError
from ._errors import RustPanic as RustPanic
from ._errors import ShutDownError as ShutDownError
from ._host import program as program
from ._library import Library as Library
from ._library import libraries as libraries
from ._library import load as load
from ._library import load_packaged as load_packaged
from ._logbridge import LogBridge as LogBridge
from ._logbridge import refresh_log_levels as refresh_log_levels
from ._object import RustObject as RustObject
from ._pystream import PyStreamArg as PyStreamArg
from ._runtime import configure as configure
from ._runtime import stats as stats
from ._stream import RustStream as RustStream

__version__ = "0.1.0"

__all__ = [
    "ClosedError",
    "Error",
    "Library",
    "LogBridge",
    "PyCallableArg",
    "PyStreamArg",
    "RustCall",
    "RustCallWithCallables",
    "RustError",
    "RustObject",
    "RustPanic",
    "RustStream",
    "ShutDownError",
    "configure",
    "demo",
    "libraries",
    "load",
    "load_packaged",
    "program",
    "refresh_log_levels",
    "stats",
]
