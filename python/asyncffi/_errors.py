"""The exceptions asyncffi raises, and the mapping from C ABI status codes to them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._loader import abi, ffi

if TYPE_CHECKING:
    from ._loader import NativeLib


class Error(Exception):
    """Base class of the errors that come from the Rust side."""


class RustError(Error):
    """A Rust function returned an error.

    :ivar kind: the error's category as the Rust code named it (for example ``"overflow"``).
    """

    def __init__(self, message: str, kind: str = "error") -> None:
        super().__init__(message)
        self.kind = kind

    def __reduce__(self) -> tuple[type[RustError], tuple[str, str]]:
        return (type(self), (str(self), self.kind))


class RustPanic(Error):
    """Rust code panicked. The panic was caught at the boundary; the process lives on."""


class ClosedError(Error):
    """A Rust object, port or task was used after it was closed or freed."""


#: The message of ``ShutDownError``.
SHUT_DOWN = "asyncffi has shut down: the interpreter is exiting"


class ShutDownError(ClosedError):
    """asyncffi has shut down (the interpreter is exiting): every call and stream started on the
    main thread from then on fails at once with this error (for example in an ``atexit``
    handler that runs after asyncffi's own exit hook). In daemon threads, which the interpreter
    is about to stop, calls wait silently instead."""


def exception_fields(exc: BaseException) -> list[str]:
    """``[type_name, message]`` of a Python exception as Rust receives it: valid UTF-8 whatever
    the exception holds (lone surrogates escaped, unprintable messages replaced)."""
    try:
        message = str(exc)
    except Exception:
        try:
            message = repr(exc)
        except Exception:
            message = f"<unprintable {type(exc).__name__}>"
    return [_printable(type(exc).__name__), _printable(message)]


def _printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def last_error(lib: NativeLib) -> str:
    """This thread's last error message from the Rust library ``lib`` (each library keeps its
    own)."""
    size = ffi.new("uintptr_t *")
    ptr = lib.affi_last_error(size)
    return bytes(ffi.buffer(ptr, size[0])).decode("utf-8", "replace")


#: The Python exceptions a Rust error of kind ``"builtins.<name>"`` is raised as
#: (``asyncffi::BuiltinError``).
_BUILTIN_KINDS: dict[str, type[Exception]] = {
    "builtins.ValueError": ValueError,
    "builtins.TypeError": TypeError,
    "builtins.OverflowError": OverflowError,
}


def rust_error(message: str, kind: str) -> Exception:
    """The exception for a Rust error: a ``RustError``, or the built-in exception its kind
    names (``"builtins.ValueError"``: ``ValueError``)."""
    builtin = _BUILTIN_KINDS.get(kind)
    if builtin is not None:
        return builtin(message)
    return RustError(message, kind)


_STATUS_EXCEPTIONS: dict[int, type[Exception]] = {
    abi.AFFI_STATUS_ERR_TYPE: TypeError,
    abi.AFFI_STATUS_ERR_VALUE: ValueError,
    abi.AFFI_STATUS_ERR_OVERFLOW: OverflowError,
    abi.AFFI_STATUS_ERR_CLOSED: ClosedError,
    abi.AFFI_STATUS_ERR_RUNTIME: RuntimeError,
    abi.AFFI_STATUS_ERR_PANIC: RustPanic,
}


def status_error(status: int, lib: NativeLib) -> Exception:
    """The exception for a negative status returned on this thread by a C ABI call of the
    library ``lib``."""
    cls = _STATUS_EXCEPTIONS.get(status, Error)
    return cls(last_error(lib))


def check(status: int, lib: NativeLib) -> int:
    """Returns ``status`` if it is not an error, else raises the matching exception (with the
    message of ``lib``, the library that returned it)."""
    if status < 0:
        raise status_error(status, lib)
    return status
